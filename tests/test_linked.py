"""The precompiled link queries give what the ORM gives, in one query."""

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from django_piauth.linked import linked_pioneer, linked_user
from django_piauth.models import Pioneer

pytestmark = pytest.mark.django_db


def field_values(instance):
    return {field.attname: getattr(instance, field.attname)
            for field in type(instance)._meta.concrete_fields}


@pytest.fixture
def pioneer():
    user = get_user_model().objects.create(username="alice", is_staff=True,
                                           last_login=timezone.now())
    return Pioneer.objects.create(user=user, provider="pi", uid="uid-alice",
                                  username="alice", scopes=["username", "payments"],
                                  last_verified_at=timezone.now())


def test_the_pioneer_and_its_user_in_one_query_as_the_orm_loads_them(
        pioneer, django_assert_num_queries):
    with django_assert_num_queries(1):
        found = linked_pioneer("pi", "uid-alice")
        user = found.user  # already loaded: no second query
    expected = Pioneer.objects.select_related("user").get(pk=pioneer.pk)
    assert field_values(found) == field_values(expected)
    assert field_values(user) == field_values(expected.user)
    # Converted as the ORM converts: aware datetimes, JSON as lists, booleans as bool.
    assert found.last_verified_at.tzinfo is not None
    assert found.scopes == ["username", "payments"]
    assert user.is_staff is True and user.is_active is True
    # Ready to save like any loaded instance.
    assert not found._state.adding and found._state.db == "default"
    found.username = "alice-renamed"
    found.save(update_fields=["username"])
    assert Pioneer.objects.get(pk=pioneer.pk).username == "alice-renamed"


def test_the_user_alone_in_one_query(pioneer, django_assert_num_queries):
    with django_assert_num_queries(1):
        user = linked_user("pi", "uid-alice")
    assert field_values(user) == field_values(get_user_model().objects.get(pk=pioneer.user_id))


def test_no_link_no_rows(pioneer):
    assert linked_user("pi", "uid-bob") is None
    assert linked_pioneer("pi", "uid-bob") is None
    assert linked_user("peerid", "uid-alice") is None  # the provider is part of the link
    assert linked_pioneer("peerid", "uid-alice") is None


@pytest.mark.django_db(transaction=True)
def test_another_thread_reads_through_its_own_connection(pioneer):
    import threading

    from django.db import connection, connections

    linked_pioneer("pi", "uid-alice")  # compiled here, on this thread's connection
    seen = {}

    def elsewhere():
        try:
            found = linked_pioneer("pi", "uid-alice")
            seen["pioneer"] = found
            seen["same connection"] = connections["default"] is connection
        finally:
            connections.close_all()

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert seen["same connection"] is False
    assert seen["pioneer"].last_verified_at == pioneer.last_verified_at
    assert seen["pioneer"].last_verified_at.tzinfo is not None
