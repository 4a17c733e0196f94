import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_piauth.conf import DEFAULTS, piauth_settings, validate
from django_piauth.providers.pi import get_pi_client


def test_defaults_apply_to_keys_not_given():
    with override_settings(PIAUTH={}):
        assert piauth_settings.PI_API_URL == "https://api.minepi.com"
        assert piauth_settings.timeout == (DEFAULTS["CONNECT_TIMEOUT"], DEFAULTS["READ_TIMEOUT"])
        assert piauth_settings.MAX_TOKEN_BYTES == 4096


def test_override_settings_is_seen_without_reloading_modules():
    with override_settings(PIAUTH={"PI_API_URL": "https://one.example"}):
        assert piauth_settings.PI_API_URL == "https://one.example"
        assert get_pi_client().base_url == "https://one.example"
        with override_settings(PIAUTH={"PI_API_URL": "https://two.example/"}):
            assert piauth_settings.PI_API_URL == "https://two.example/"
            assert get_pi_client().base_url == "https://two.example"
        assert get_pi_client().base_url == "https://one.example"


def test_misspelled_key_names_the_key_and_the_nearest_valid_one():
    with (
        override_settings(PIAUTH={"PI_API_ULR": "https://x.example"}),
        pytest.raises(ImproperlyConfigured) as info,
    ):
        piauth_settings.PI_API_URL  # noqa: B018
    message = str(info.value)
    assert "'PI_API_ULR'" in message
    assert "'PI_API_URL'" in message


def test_unknown_key_without_a_near_match_still_errors():
    with pytest.raises(ImproperlyConfigured, match=r"\['COLOUR'\] is not a known key\.$"):
        validate({"COLOUR": "blue"})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CONNECT_TIMEOUT", 0),
        ("READ_TIMEOUT", "5"),
        ("PI_API_URL", "ftp://api.minepi.com"),
        ("MAX_TOKEN_BYTES", True),
        ("PI_REQUIRED_SCOPES", "payments"),
    ],
)
def test_wrong_types_are_refused(key, value):
    with pytest.raises(ImproperlyConfigured, match=key):
        validate({key: value})


def test_a_refused_secret_is_not_echoed():
    with pytest.raises(ImproperlyConfigured) as info:
        validate({"PI_SERVER_API_KEY": 123456789})
    assert "123456789" not in str(info.value)


def test_piauth_must_be_a_dict():
    with pytest.raises(ImproperlyConfigured, match="must be a dict"):
        validate(["PI_API_URL"])


def test_mobile_sign_in_is_off_by_default_and_must_be_a_bool():
    with override_settings(PIAUTH={}):
        assert piauth_settings.PEERID_ALLOW_MOBILE_SIGN_IN is False
    with pytest.raises(ImproperlyConfigured, match="PEERID_ALLOW_MOBILE_SIGN_IN"):
        validate({"PEERID_ALLOW_MOBILE_SIGN_IN": "yes"})
