"""Generated key pairs must paste into any S3 tool and any command line."""

import re

from nebulaio.util.keyfile import new_key_pair


def test_generated_pairs_are_shaped_like_aws_and_never_read_as_an_option():
    for _ in range(2000):
        access_key, secret_key = new_key_pair()
        assert re.fullmatch(r"[A-Z0-9]{20}", access_key)
        assert re.fullmatch(r"[A-Za-z0-9+/]{40}", secret_key)
