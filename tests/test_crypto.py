"""Tokens encrypted at rest, keys that rotate, and the re-encryption command."""

import io

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from django_piauth.crypto import UndecryptableValue, decrypt, encrypt
from django_piauth.models import PeerIDCredential, Pioneer

pytestmark = pytest.mark.django_db
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
ACCESS, REFRESH = "A" * 124, "R" * 124


def raw_row(pk):
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM django_piauth_peeridcredential "
                       "WHERE id = %s", [pk])
        return cursor.fetchone()


@pytest.fixture
def credential():
    user = get_user_model().objects.create_user("carol")
    pioneer = Pioneer.objects.create(user=user, provider="peerid", uid="7")
    return PeerIDCredential.objects.create(pioneer=pioneer, access_token=ACCESS,
                                           refresh_token=REFRESH)


def test_round_trip_and_no_clear_text():
    ciphertext = encrypt("secret-value")
    assert "secret-value" not in ciphertext
    assert decrypt(ciphertext) == "secret-value"
    assert encrypt("secret-value") != ciphertext  # a fresh IV every time


def test_raw_rows_hold_neither_token_in_clear(credential):
    stored = raw_row(credential.pk)
    assert ACCESS not in stored[0] and REFRESH not in stored[1]
    fetched = PeerIDCredential.objects.get(pk=credential.pk)
    assert (fetched.access_token, fetched.refresh_token) == (ACCESS, REFRESH)
    assert ACCESS not in repr(fetched) and ACCESS not in str(fetched)


def test_old_rows_still_decrypt_after_a_new_key_is_put_first(credential, settings):
    settings.PIAUTH = {**settings.PIAUTH, "TOKEN_ENCRYPTION_KEYS": [OLD]}
    credential.save()  # stored under OLD
    settings.PIAUTH = {**settings.PIAUTH, "TOKEN_ENCRYPTION_KEYS": [NEW, OLD]}
    assert PeerIDCredential.objects.get(pk=credential.pk).access_token == ACCESS


def test_reencrypt_moves_every_row_to_the_newest_key(credential, settings):
    settings.PIAUTH = {**settings.PIAUTH, "TOKEN_ENCRYPTION_KEYS": [OLD]}
    credential.save()
    before = raw_row(credential.pk)
    settings.PIAUTH = {**settings.PIAUTH, "TOKEN_ENCRYPTION_KEYS": [NEW, OLD]}
    out = io.StringIO()
    call_command("piauth_reencrypt", stdout=out)
    assert "Re-encrypted 1 row(s)" in out.getvalue()
    after = raw_row(credential.pk)
    assert after != before
    assert Fernet(NEW.encode()).decrypt(after[0].encode()).decode() == ACCESS
    settings.PIAUTH = {**settings.PIAUTH, "TOKEN_ENCRYPTION_KEYS": [NEW]}  # OLD dropped
    fetched = PeerIDCredential.objects.get(pk=credential.pk)
    assert (fetched.access_token, fetched.refresh_token) == (ACCESS, REFRESH)


def test_reencrypt_leaves_undecryptable_rows_alone_and_fails(credential, settings):
    settings.PIAUTH = {**settings.PIAUTH, "TOKEN_ENCRYPTION_KEYS": [OLD]}
    credential.save()
    before = raw_row(credential.pk)
    settings.PIAUTH = {**settings.PIAUTH, "TOKEN_ENCRYPTION_KEYS": [NEW]}
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 row"):
        call_command("piauth_reencrypt", stdout=io.StringIO(), stderr=err)
    assert "cannot be decrypted" in err.getvalue()
    assert raw_row(credential.pk) == before  # nothing lost


def test_a_lost_key_reads_as_no_token_not_a_crash(credential, settings, caplog):
    settings.PIAUTH = {**settings.PIAUTH, "TOKEN_ENCRYPTION_KEYS": [NEW]}
    fetched = PeerIDCredential.objects.get(pk=credential.pk)
    assert fetched.access_token is None
    assert "cannot be decrypted" in caplog.text
    with pytest.raises(UndecryptableValue):
        decrypt(raw_row(credential.pk)[0])


def test_a_bad_key_is_a_clear_configuration_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.PIAUTH = {**settings.PIAUTH, "TOKEN_ENCRYPTION_KEYS": ["not-a-key"]}
    with pytest.raises(ImproperlyConfigured, match=r"TOKEN_ENCRYPTION_KEYS'\]\[0\]"):
        encrypt("x")


def test_keys_derived_from_secret_key_survive_rotation_through_fallbacks(credential, settings):
    settings.SECRET_KEY = "first-secret-key-" + "x" * 40
    credential.save()
    settings.SECRET_KEY = "second-secret-key-" + "y" * 40
    settings.SECRET_KEY_FALLBACKS = ["first-secret-key-" + "x" * 40]
    assert PeerIDCredential.objects.get(pk=credential.pk).access_token == ACCESS


@pytest.fixture
def safe_grant():
    from django.utils import timezone

    from django_piauth.models import SafeGrant

    return SafeGrant.objects.create(
        launcher_url="http://localhost:8100", app_id="com.example.shop", app_name="Shop",
        app_version="1.0", app_vendor="Example", token="S" * 60,
        authorized_at=timezone.now())


def dump(tmp_path):
    out = io.StringIO()
    call_command("dumpdata", "django_piauth.PeerIDCredential", "django_piauth.SafeGrant",
                 stdout=out)
    path = tmp_path / "dump.json"
    path.write_text(out.getvalue())
    return path


def test_dumpdata_writes_ciphertext_and_loaddata_restores_the_same_rows(
        credential, safe_grant, tmp_path):
    import json

    from django_piauth.models import SafeGrant

    path = dump(tmp_path)
    text = path.read_text()
    for secret in (ACCESS, REFRESH, "S" * 60):
        assert secret not in text
    dumped = {(row["model"], name): value for row in json.loads(text)
              for name, value in row["fields"].items()}
    assert decrypt(dumped["django_piauth.peeridcredential", "access_token"]) == ACCESS
    assert decrypt(dumped["django_piauth.safegrant", "token"]) == "S" * 60

    PeerIDCredential.objects.all().delete()
    SafeGrant.objects.all().delete()
    call_command("loaddata", str(path), stdout=io.StringIO())
    fetched = PeerIDCredential.objects.get(pk=credential.pk)
    assert (fetched.access_token, fetched.refresh_token) == (ACCESS, REFRESH)
    assert SafeGrant.objects.get(pk=safe_grant.pk).token == "S" * 60
    stored = raw_row(credential.pk)
    assert decrypt(stored[0]) == ACCESS  # encrypted once, not twice
    assert stored[0] == dumped["django_piauth.peeridcredential", "access_token"]


def test_loaddata_of_a_dump_in_clear_stores_it_encrypted(credential, tmp_path):
    import json

    path = dump(tmp_path)
    rows = json.loads(path.read_text())
    for row in rows:  # as an older django-piauth wrote it
        if row["model"] == "django_piauth.peeridcredential":
            row["fields"].update(access_token=ACCESS, refresh_token=REFRESH)
    path.write_text(json.dumps(rows))
    PeerIDCredential.objects.all().delete()
    call_command("loaddata", str(path), stdout=io.StringIO())
    stored = raw_row(credential.pk)
    assert ACCESS not in stored[0] and decrypt(stored[0]) == ACCESS
    assert PeerIDCredential.objects.get(pk=credential.pk).access_token == ACCESS
