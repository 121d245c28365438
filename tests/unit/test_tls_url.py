"""TLS URL handling: verification whenever TLS is requested (``ssl=true`` included)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from cowork.errors import ConfigError
from cowork.storage.postgres.tls import secure_url


def _params(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_plain_url_is_untouched() -> None:
    assert secure_url("postgresql://u@h/db") == "postgresql://u@h/db"


@pytest.mark.parametrize("flag", ["true", "1", "TRUE", "yes"])
def test_ssl_true_means_verify_full(flag: str) -> None:
    params = _params(secure_url(f"postgresql://u@h/db?ssl={flag}"))
    assert params["sslmode"] == ["verify-full"]
    assert params["sslrootcert"] == ["system"]
    assert "ssl" not in params


def test_require_is_upgraded_unless_explicitly_insecure() -> None:
    assert _params(secure_url("postgresql://h/db?sslmode=require"))["sslmode"] == ["verify-full"]
    insecure = _params(secure_url("postgresql://h/db?sslmode=require&cowork_tls_verify=false"))
    assert insecure["sslmode"] == ["require"]
    assert "cowork_tls_verify" not in insecure


def test_user_verify_settings_are_honoured() -> None:
    url = "postgresql://h/db?sslmode=verify-ca&sslrootcert=/etc/ca.pem"
    params = _params(secure_url(url))
    assert params["sslmode"] == ["verify-ca"]
    assert params["sslrootcert"] == ["/etc/ca.pem"]


def test_ssl_false_and_bad_values() -> None:
    assert "sslmode" not in _params(secure_url("postgresql://h/db?ssl=false&application_name=x"))
    with pytest.raises(ConfigError):
        secure_url("postgresql://h/db?ssl=maybe")
