"""A new Pioneer's free username (django_piauth.usernames): the same names as a plain
``istartswith`` finds, read through the username index, and looked for before the
transaction that creates the User and its Pioneer (issue 14)."""

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_piauth.usernames import free_username, taken_usernames

User = get_user_model()
pytestmark = pytest.mark.django_db

NAMES = [
    "alice", "Alice-2", "ALICE-3", "aLiCe_x", "alic", "alicf", "alicE9", "ali", "al",
    "bob", "b0b", "Bob-2", "bob_%", "bob%", "bo_b", "bobby", "\u0131van", "ivan", "Ivan-2",
    "\u017fam", "sam", "Sam-2", "z\u00e9ro", "Z\u00e9ro-2", "\u00e9mile", "\u00c9mile-2",
    "42", "42-2", "-x", "_x", "%x", "a" * 150, "A" * 148 + "-2", "alice\u00e9",
]
BASES = ["alice", "ALICE", "Alic", "al", "a", "bob", "bob_", "bob%", "bo", "b0", "ivan",
         "Ivan", "I", "sam", "S", "z\u00e9ro", "\u00e9mile", "\u00c9MILE", "42", "-", "_",
         "%", "a" * 150, "nobody", "x"]


@pytest.fixture
def users():
    User.objects.bulk_create([User(username=name) for name in NAMES])


def _plain(base):
    """What the database's own istartswith finds: the set the narrowed query must equal."""
    return {name.lower() for name in
            User.objects.filter(username__istartswith=base).values_list("username", flat=True)}


@pytest.mark.parametrize("base", BASES)
def test_the_narrowed_search_finds_what_istartswith_finds(users, base):
    assert taken_usernames(User, "username", base) == _plain(base)


def test_a_lookup_that_sends_another_value_than_assumed_is_left_to_the_orm(users,
                                                                          monkeypatch):
    """The compiled query is reused only when the ORM's own values were the ones assumed;
    otherwise every search is the ORM's (and finds the same names)."""
    from django_piauth import usernames

    monkeypatch.setattr(usernames, "_compiled", {})
    monkeypatch.setattr(usernames, "_istartswith_param", lambda alias, base: "other")
    assert taken_usernames(User, "username", "alice") == _plain("alice")
    assert set(usernames._compiled.values()) == {""}
    assert taken_usernames(User, "username", "bob") == _plain("bob")


def test_a_taken_name_gets_the_first_free_suffix_ignoring_case(users):
    assert free_username(User, "username", "Alice", 150) == "Alice-4"
    assert free_username(User, "username", "BOB", 150) == "BOB-3"
    assert free_username(User, "username", "carol", 150) == "carol"


def test_the_search_reads_the_username_index_not_the_table(users):
    """The plan reads ranges of the username index: on SQLite its unique index (the plain
    istartswith would SCAN auth_user), on PostgreSQL the pattern index Django makes for
    a unique username (among 3,000 names of many beginnings, analyzed)."""
    import random

    from django_piauth.usernames import _index_condition

    rng = random.Random(14)
    letters = "abcdefghijklmnopqrstuvwxyz"
    User.objects.bulk_create([User(username="".join(rng.choices(letters, k=10)) + str(i))
                              for i in range(3000)])
    names = User.objects.filter(username__istartswith="alice")
    narrowed = names.filter(_index_condition(User, "username", "alice")).values("username")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE auth_user")
        plan = narrowed.explain()
        assert "Index Cond" in plan and "~>=~" in plan, plan
        assert "Seq Scan" in names.values("username").explain()  # what it replaces
    else:
        plan = narrowed.explain()
        assert "SEARCH" in plan and "INDEX" in plan.upper(), plan
        assert "SCAN" not in plan.replace("COVERING INDEX", ""), plan
        assert "SCAN" in names.values("username").explain()


@pytest.mark.django_db(transaction=True)
def test_the_username_is_chosen_before_the_transaction(fake_pi):
    """A first sign-in's queries: the link lookup and the username search, then the
    transaction with the two inserts and nothing else (on SQLite in IMMEDIATE mode the
    transaction holds the write lock: a search inside it makes every other first sign-in
    wait for it too)."""
    User.objects.create(username="alice")
    token = fake_pi.issue_token(username="alice")
    with CaptureQueriesContext(connection) as captured:
        user = authenticate(None, pi_access_token=token)
    assert user.username == "alice-2"
    statements = [query["sql"].split()[0].upper() for query in captured.captured_queries]
    begin = next(i for i, word in enumerate(statements) if word in ("BEGIN", "SAVEPOINT"))
    assert statements[:begin] == ["SELECT", "SELECT"], statements
    assert "auth_user" in captured.captured_queries[1]["sql"]
    inside = [word for word in statements[begin + 1:] if word not in ("RELEASE", "COMMIT")]
    assert inside == ["INSERT", "INSERT"], statements


@pytest.mark.django_db(transaction=True)
def test_a_name_taken_between_the_search_and_the_insert_is_chosen_again(fake_pi,
                                                                        monkeypatch):
    """The name is free when looked for, taken by the time of the insert (another
    sign-in's): the IntegrityError makes it choose again, with a random suffix."""
    from django_piauth import backends

    real = backends.free_username

    def taken_meanwhile(*args, **kwargs):
        name = real(*args, **kwargs)
        User.objects.create(username=name)
        return name

    monkeypatch.setattr(backends, "free_username", taken_meanwhile)
    user = authenticate(None, pi_access_token=fake_pi.issue_token(username="dora"))
    assert user.username.startswith("dora-") and len(user.username) == len("dora-") + 6
    assert User.objects.filter(username="dora").exists()
    assert fake_pi.call_count("/v2/me") == 1
