"""Settings: one table feeds the documented file, the environment and the flags."""

from pathlib import Path

import pytest

from nebulaio import config
from nebulaio.cli import main

DOCUMENTED = Path(__file__).resolve().parents[3] / "conf" / "nebulaio.toml"


def test_documented_file_matches_the_settings_table():
    assert DOCUMENTED.read_text() == config.render_toml()


def test_documented_file_resolves_to_the_defaults():
    assert config.resolve(str(DOCUMENTED), environ={}) == config.resolve(environ={})


def test_precedence_defaults_file_environment_flags(tmp_path):
    path = tmp_path / "node.toml"
    path.write_text(
        '[listen]\ns3_address = "127.0.0.1:1"\nadmin_address = "127.0.0.1:2"\n[s3]\nmax_object_size = "2M"\n'
    )
    resolved = config.resolve(
        str(path),
        flags={"s3_address": "127.0.0.1:3", "region": None},
        environ={"NEBULAIO_S3_ADDRESS": "127.0.0.1:4", "NEBULAIO_ADMIN_ADDRESS": "127.0.0.1:5"},
    )
    assert resolved["s3_address"] == "127.0.0.1:3"  # flag beats environment and file
    assert resolved["admin_address"] == "127.0.0.1:5"  # environment beats file
    assert resolved["max_object_size"] == 2 * 1024 * 1024  # file beats default, sizes parsed
    assert resolved["region"] == "us-east-1"  # unset flag leaves the default


def test_unknown_setting_in_file_is_refused(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[node]\nno_such_setting = 1\n")
    with pytest.raises(ValueError, match="no_such_setting"):
        config.resolve(str(path), environ={})


@pytest.mark.parametrize(
    "text, expected",
    [("5G", 5 * 1024**3), ("64K", 65536), ("1048576", 1048576), ("1.5M", 1572864), ("2MiB", 2 * 1024**2)],
)
def test_sizes(text, expected):
    assert config.BY_NAME["max_object_size"].kind(text) == expected


def test_split_address():
    assert config.split_address(":9000") == ("0.0.0.0", 9000)
    assert config.split_address("127.0.0.1:9001") == ("127.0.0.1", 9001)
    assert config.split_address("[::1]:9002") == ("::1", 9002)


def test_bad_configuration_exits_with_a_message(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[node]\nno_such_setting = 1\n")
    assert main(["server", "--config", str(path)]) == 2
    assert "no_such_setting" in capsys.readouterr().err


def test_a_short_admin_secret_is_refused_and_an_empty_one_generated():
    with pytest.raises(ValueError, match="admin_secret must be at least 32 bytes"):
        config.resolve(environ={"NEBULAIO_ADMIN_SECRET": "change-me-admin-secret"})
    assert config.resolve(environ={"NEBULAIO_ADMIN_SECRET": ""})["admin_secret"] == ""
    assert len(config.resolve(environ={"NEBULAIO_ADMIN_SECRET": "s" * 32})["admin_secret"]) == 32


def test_repair_needs_a_positive_batch_and_bandwidth():
    with pytest.raises(ValueError, match="repair_batch must be at least 1"):
        config.resolve(environ={"NEBULAIO_REPAIR_BATCH": "0"})
    with pytest.raises(ValueError, match="repair_bandwidth must be at least 1"):
        config.resolve(environ={"NEBULAIO_REPAIR_BANDWIDTH": "0"})
    assert config.resolve(environ={"NEBULAIO_REPAIR_BATCH": "3"})["repair_batch"] == 3


def test_every_example_configuration_resolves():
    for path in sorted(DOCUMENTED.parent.glob("*/*.toml")):
        config.resolve(str(path), environ={})


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"NEBULAIO_ROOT_USER": "nebulaadmin", "NEBULAIO_ROOT_PASSWORD": "nebulaadmin"}, "is public"),
        ({"NEBULAIO_ROOT_USER": "someone", "NEBULAIO_ROOT_PASSWORD": "nebulaadmin"}, "is public"),
        ({"NEBULAIO_ROOT_PASSWORD": "a-secret-of-mine"}, "set together"),
        ({"NEBULAIO_JOIN": "127.0.0.1:9004"}, "a cluster needs root_user and root_password"),
        ({"NEBULAIO_ROLE": "storage", "NEBULAIO_RAFT_PEERS": "127.0.0.1:9003"}, "a cluster needs root_user"),
        ({"NEBULAIO_LOGIN_MAX_FAILURES": "-1"}, "login_max_failures must be 0"),
        ({"NEBULAIO_LOGIN_WINDOW": "0"}, "login_window must be at least 1"),
    ],
)
def test_a_public_half_set_or_per_node_root_pair_and_bad_login_limits_are_refused(environ, message):
    with pytest.raises(ValueError, match=message):
        config.resolve(environ=environ)


def test_a_lone_node_may_leave_the_root_pair_to_be_generated():
    assert config.resolve(environ={})["root_user"] == config.resolve(environ={})["root_password"] == ""
    clustered = {"NEBULAIO_RAFT_PEERS": "127.0.0.1:1,127.0.0.1:2", "NEBULAIO_ROOT_USER": "me"}
    assert config.resolve(environ=clustered | {"NEBULAIO_ROOT_PASSWORD": "mine-0123"})["root_user"] == "me"


def test_mtls_between_nodes_is_set_whole_or_not_at_all():
    with pytest.raises(ValueError, match="internal_tls_ca, internal_tls_cert, internal_tls_key are set together"):
        config.resolve(environ={"NEBULAIO_INTERNAL_TLS_CA": "ca.pem", "NEBULAIO_INTERNAL_TLS_CERT": "node1.pem"})
    resolved = config.resolve(environ={})
    assert resolved["internal_address"] == ":9005"
    assert config.advertised(resolved, "internal") == "127.0.0.1:9005"
