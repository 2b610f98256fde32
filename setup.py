"""Packaging for NebulaIO."""

import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent


class BuildWithGunicornConf(build_py):
    """Ship the top-level gunicorn.conf.py inside the package so an installed node finds it."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install finds the file in the checkout itself
        target = Path(self.build_lib) / "nebulaio" / "gunicorn.conf.py"
        shutil.copyfile(HERE / "gunicorn.conf.py", target)


setup(
    name="nebulaio",
    version="0.1.0",
    description="A distributed, S3-compatible object store",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["nebulaio", "nebulaio.*"]),
    package_data={"nebulaio": ["defaults.toml", "console/static/*"]},
    install_requires=[
        "gunicorn>=23",
        "falcon>=4",
        "pysyncobj>=0.3.14",
        "lmdb>=1.4",
        "xxhash>=3",
        "orjson>=3.8",
        "pyjwt>=2.8",
        "setproctitle>=1.3",
        "psutil>=5.9",
        "defusedxml>=0.7",
        "crc32c>=2.3",
        # CRC64NVME and CRC combination (FULL_OBJECT multipart checksums), in C.
        "awscrt>=0.38",
        "cryptography>=41",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "hypothesis>=6",
            "boto3>=1.44",
            "requests>=2.31",
            "trustme>=1.1",
            "awscli>=1.46",
            "schemathesis>=4",
            "playwright>=1.45",
            # A real client whose DeleteObjects carries a flexible checksum instead of Content-MD5.
            "pyarrow>=20",
            "fusepy>=3.0.1",
            # The deployment kit's tests read the Prometheus rules.
            "pyyaml>=6",
            # The pytest plugin's own test runs a test project with -n 2.
            "pytest-xdist>=3.6",
        ],
        "bench": ["moto[server]>=5"],
    },
    entry_points={
        "console_scripts": ["nebulaio = nebulaio.cli:main"],
        # The nebulaio_server, nebulaio_client and nebulaio_bucket fixtures, in any test suite.
        "pytest11": ["nebulaio = nebulaio.pytest_plugin"],
    },
    cmdclass={"build_py": BuildWithGunicornConf},
)
