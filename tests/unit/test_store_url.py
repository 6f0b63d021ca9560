"""Store URLs: passwords never shown, typos refused."""

from __future__ import annotations

import pytest

from queuectl.errors import UsageError
from queuectl.store.factory import open_store
from queuectl.store.urls import mask_url, scrub


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("postgresql://postgres:p@ss@host/db", "postgresql://postgres:***@ss@host/db"),  # libpq splits at the first @
        ("postgresql://u@h:5432/db?sslmode=require", "postgresql://u@h:5432/db?sslmode=require"),
        ("postgresql://u@h/db?password=zz&sslpassword=k3y", "postgresql://u@h/db?password=***&sslpassword=***"),
        ("postgres://h/db", "postgres://h/db"),
        ("/var/lib/queue.db", "/var/lib/queue.db"),
    ],
)
def test_mask_url_hides_every_password(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_scrub_removes_the_url_and_its_secrets_from_a_message() -> None:
    url = "postgresql://u:s3cr%21t@h/db?sslpassword=k3y"
    message = f'bad URI "{url}", password "s3cr!t", key k3y'
    cleaned = scrub(message, url)
    assert "s3cr" not in cleaned and "k3y" not in cleaned
    assert "postgresql://u:***@h/db" in cleaned


@pytest.mark.parametrize(
    "location", ["postgresql:/h/db", "postgres:h", "postgresql//h/db", "host=h dbname=d password=x"]
)
def test_what_looks_like_a_mistyped_url_is_refused_not_made_a_file(location: str, tmp_path: object) -> None:
    with pytest.raises(UsageError) as raised:
        open_store(location)
    assert "password=x" not in str(raised.value)
