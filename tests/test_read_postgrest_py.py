"""The PostgREST read dialect through the real postgrest-py client (tests/requirements.txt pins
postgrest==2.34.1), on schema `library` (tests/fixtures/library.sql): the requests are the ones
that client builds (its quoting, its Prefer/Accept headers), the answers are what it parses.
Expected rows were checked against the fixture data with SQL; test_read_dialect.py has the
raw-HTTP counterparts."""

from __future__ import annotations

from typing import Iterator

import pytest
from postgrest import SyncPostgrestClient
from postgrest.exceptions import APIError


@pytest.fixture
def lib(pg) -> Iterator[SyncPostgrestClient]:
    with SyncPostgrestClient(pg.base_url, schema="library") as client:
        yield client


def ids(resp) -> list[int]:
    return [row["id"] for row in resp.data]


def test_embed_with_eq(lib):
    resp = lib.from_("books").select("title, authors(name)").eq("id", 1).execute()
    assert resp.data == [{"title": "The Left Hand of Darkness",
                          "authors": {"name": "Ursula K. Le Guin"}}]
    assert resp.count is None


def test_schema_switch_reaches_other_tables(lib):
    public = lib.schema("public")
    resp = public.from_("books").select("id,title").eq("id", 1).execute()
    assert resp.data == [{"id": 1, "title": "The Rust Programming Language"}]
    resp = lib.from_("books").select("id,title").eq("id", 1).execute()
    assert resp.data == [{"id": 1, "title": "The Left Hand of Darkness"}]


def test_single(lib):
    resp = lib.from_("books").select("id,title,writer:authors(name)").eq("id", 3).single().execute()
    assert resp.data == {"id": 3, "title": "Guards! Guards!",
                         "writer": {"name": "Terry Pratchett"}}
    with pytest.raises(APIError) as info:
        lib.from_("books").select("id").gte("year", 2000).single().execute()
    assert info.value.code == "PGRST116"
    assert info.value.details == "The result contains 4 rows"


def test_maybe_single(lib):
    assert lib.from_("books").select("id").eq("id", 999).maybe_single().execute() is None
    resp = lib.from_("books").select("id").eq("id", 2).maybe_single().execute()
    assert resp.data == {"id": 2}


def test_count_exact(lib):
    resp = lib.from_("books").select("id", count="exact").order("id").limit(2).execute()
    assert resp.data == [{"id": 1}, {"id": 2}]
    assert resp.count == 8
    resp = lib.from_("books").select("*", count="exact").gte("year", 2000).order("id").execute()
    assert ids(resp) == [4, 5, 7, 8]
    assert resp.count == 4
    # head=True: a HEAD request, the count only.
    resp = lib.from_("books").select("id", count="exact", head=True).lt("year", 1990).execute()
    assert resp.count == 3
    assert resp.data == []


def test_count_planned(lib):
    resp = lib.from_("books").select("id", count="planned").order("id").limit(1).execute()
    assert resp.data == [{"id": 1}]
    assert isinstance(resp.count, int) and resp.count >= 0


def test_order(lib):
    resp = lib.from_("authors").select("id").order("born", desc=True, nullsfirst=False).execute()
    assert ids(resp) == [3, 4, 6, 2, 1, 5]
    resp = lib.from_("authors").select("id").order("born", nullsfirst=True).execute()
    assert ids(resp) == [5, 1, 2, 6, 4, 3]
    resp = (lib.from_("books").select("id")
            .order("author_id", desc=True, nullsfirst=False).order("year").execute())
    assert ids(resp) == [6, 5, 4, 8, 3, 2, 1, 7]
    resp = lib.from_("books").select("id").order("meta->>genre", nullsfirst=True).order("id") \
        .execute()
    assert ids(resp) == [7, 2, 3, 4, 8, 1, 5, 6]


def test_limit_offset_range(lib):
    assert ids(lib.from_("books").select("id").order("id").limit(3).execute()) == [1, 2, 3]
    assert ids(lib.from_("books").select("id").order("id").limit(2).offset(5).execute()) == [6, 7]
    assert ids(lib.from_("books").select("id").order("id").range(2, 4).execute()) == [3, 4, 5]


def test_comparisons(lib):
    books = lambda: lib.from_("books").select("id").order("id")  # noqa: E731
    assert ids(books().gt("year", 2002).execute()) == [4, 7, 8]
    assert ids(books().gte("year", 2002).execute()) == [4, 5, 7, 8]
    assert ids(books().lt("year", 1969).execute()) == [2]
    assert ids(books().lte("year", 1969).execute()) == [1, 2]
    assert ids(books().neq("year", 1989).execute()) == [1, 2, 4, 5, 6, 7, 8]
    assert ids(books().match({"author_id": 3, "year": 2015}).execute()) == [4]
    assert ids(books().filter("meta->>genre", "eq", "fantasy").execute()) == [2, 3, 4, 8]


def test_in(lib):
    # postgrest-py quotes the value holding a comma.
    resp = (lib.from_("books").select("id")
            .in_("title", ["Guards! Guards!", "Stories of Your Life, and Others"])
            .order("id").execute())
    assert ids(resp) == [3, 5]
    resp = lib.from_("books").select("id").not_.in_("id", [1, 3, 5]).order("id").execute()
    assert ids(resp) == [2, 4, 6, 7, 8]


def test_is(lib):
    assert ids(lib.from_("books").select("id").is_("author_id", None).execute()) == [7]
    resp = lib.from_("books").select("id").is_("in_stock", False).order("id").execute()
    assert ids(resp) == [3, 6]
    resp = lib.from_("books").select("id").not_.is_("author_id", None).order("id").execute()
    assert ids(resp) == [1, 2, 3, 4, 5, 6, 8]


def test_like_ilike(lib):
    assert ids(lib.from_("books").select("id").like("title", "*Sea*").execute()) == [4]
    resp = lib.from_("books").select("id").ilike("title", "*sea*").order("id").execute()
    assert ids(resp) == [2, 4]
    resp = lib.from_("books").select("id").like_any_of("title", "*Sky*,*Guards*").order("id") \
        .execute()
    assert ids(resp) == [3, 8]
    resp = lib.from_("books").select("id").ilike_all_of("title", "*the*,*season*").execute()
    assert ids(resp) == [4]


def test_or(lib):
    resp = lib.from_("books").select("id").or_("year.lt.1969,year.gt.2016").order("id").execute()
    assert ids(resp) == [2, 7, 8]
    resp = (lib.from_("books").select("id")
            .or_("id.eq.1,and(year.gt.2000,author_id.eq.3)").order("id").execute())
    assert ids(resp) == [1, 4, 8]
    resp = lib.from_("books").select("id").not_.or_("year.lt.1969,year.gt.2016").order("id") \
        .execute()
    assert ids(resp) == [1, 3, 4, 5, 6]


def test_embedded_or_order_limit(lib):
    resp = (lib.from_("authors").select("id,books(id)").in_("id", [1, 3]).order("id")
            .or_("year.lt.1969,year.gt.2016", reference_table="books")
            .order("id", foreign_table="books").execute())
    assert resp.data == [{"id": 1, "books": [{"id": 2}]}, {"id": 3, "books": [{"id": 8}]}]
    resp = (lib.from_("authors").select("id,books(year)").in_("id", [1, 3]).order("id")
            .order("year", desc=True, foreign_table="books").limit(1, foreign_table="books")
            .execute())
    assert resp.data == [{"id": 1, "books": [{"year": 1969}]}, {"id": 3, "books": [{"year": 2017}]}]


def test_embedded_filter_inner(lib):
    resp = (lib.from_("books").select("id,authors!inner(name)")
            .eq("authors.name", "N. K. Jemisin").order("id").execute())
    assert resp.data == [{"id": 4, "authors": {"name": "N. K. Jemisin"}},
                         {"id": 8, "authors": {"name": "N. K. Jemisin"}}]


def test_many_to_many_and_nested(lib):
    resp = (lib.from_("books").select("title,tags(name)").in_("id", [1, 6]).order("id")
            .order("name", foreign_table="tags").execute())
    assert resp.data == [
        {"title": "The Left Hand of Darkness",
         "tags": [{"name": "award-winner"}, {"name": "classic"}]},
        {"title": "Excession", "tags": []},
    ]
    resp = (lib.from_("authors").select("name,books(title,reviews(stars))").eq("id", 3)
            .order("id", foreign_table="books").order("id", foreign_table="books.reviews")
            .execute())
    assert resp.data == [{"name": "N. K. Jemisin", "books": [
        {"title": "The Fifth Season", "reviews": [{"stars": 5}, {"stars": 3}]},
        {"title": "The Stone Sky", "reviews": [{"stars": 5}]},
    ]}]


def test_disambiguation_and_ambiguity_error(lib):
    resp = (lib.from_("loans").select("id,lender:authors!lender_id(name),"
                                      "borrower:authors!loans_borrower_id_fkey(name)")
            .eq("id", 4).execute())
    assert resp.data == [{"id": 4, "lender": {"name": "Ted Chiang"}, "borrower": None}]
    with pytest.raises(APIError) as info:
        lib.from_("loans").select("id,authors(name)").execute()
    assert info.value.code == "PGRST201"
    assert [d["relationship"] for d in info.value.details] == [
        "loans_borrower_id_fkey using loans(borrower_id) and authors(id)",
        "loans_lender_id_fkey using loans(lender_id) and authors(id)",
    ]


def test_spread_and_computed(lib):
    resp = (lib.from_("books").select("title,...authors(author_name:name)")
            .in_("id", [3, 7]).order("id").execute())
    assert resp.data == [{"title": "Guards! Guards!", "author_name": "Terry Pratchett"},
                         {"title": "Untitled Manuscript", "author_name": None}]
    resp = lib.from_("books").select("id,title_upper,top_review(stars)").eq("id", 4).execute()
    assert resp.data == [{"id": 4, "title_upper": "THE FIFTH SEASON", "top_review": {"stars": 5}}]


def test_text_search(lib):
    def search(query, **options):
        resp = (lib.from_("books").select("id").text_search("search", query, options)
                .order("id").execute())
        return ids(resp)

    assert search("season") == [4]
    assert search("seasons", config="english") == [4]
    assert search("stone sky", type="plain") == [8]
    assert search("fifth season", type="phrase") == [4]
    assert search("guards or sky", type="web_search", config="english") == [3, 8]
    resp = lib.from_("books").select("id").fts("search", "season").execute()
    assert ids(resp) == [4]


def test_arrays_and_ranges(lib):
    books = lambda: lib.from_("books").select("id").order("id")  # noqa: E731
    assert ids(books().contains("scores", [5]).execute()) == [1, 3, 4, 8]
    assert ids(books().contained_by("scores", [4, 5]).execute()) == [1, 2, 3, 5, 6, 8]
    assert ids(books().ov("scores", [1, 3]).execute()) == [4]
    assert ids(books().contains("in_print", "[1970,1980)").execute()) == [1, 2]
    # postgrest-py writes ranges as (a,b): both bounds exclusive.
    assert ids(books().range_lt("in_print", (2000, 2010)).execute()) == [1, 3, 6]
    assert ids(books().range_gt("in_print", (2000, 2010)).execute()) == [4, 8]
    assert ids(books().range_gte("in_print", (1999, 2010)).execute()) == [4, 5, 8]
    assert ids(books().range_lte("in_print", (1999, 2010)).execute()) == [1, 3, 5, 6]
    assert ids(books().range_adjacent("in_print", (1999, 2010)).execute()) == [3, 6]


def test_csv(lib):
    resp = lib.from_("tags").select('id,name,"shelf code"').order("id").csv().execute()
    assert resp.data == ("id,name,shelf code\n1,classic,A-1\n2,award-winner,B-2\n3,humor,C-3\n"
                         "4,series,D-4\n5,short-stories,\n6,unread,Z-9")


def test_strip_nulls(lib):
    resp = lib.from_("reviews").select("id,body,reviewer").in_("id", [2, 5, 6]).order("id") \
        .strip_nulls().execute()
    assert resp.data == [{"id": 2, "body": "Slow start"}, {"id": 5, "reviewer": "dee"},
                         {"id": 6, "body": "Clever", "reviewer": "ann"}]


def test_errors_come_back_as_api_errors(lib):
    with pytest.raises(APIError) as info:
        lib.from_("books").select("nope").execute()
    assert info.value.code == "42703"
    with pytest.raises(APIError) as info:
        lib.from_("books").select("title,authors!nonexistent(name)").execute()
    assert info.value.code == "PGRST200"
    assert info.value.message == ("Could not find a relationship between 'books' and 'authors' "
                                  "in the schema cache")
    with pytest.raises(APIError) as info:
        lib.from_("nope").select("*").execute()
    assert info.value.code == "PGRST205"
    assert info.value.message == "Could not find the table 'library.nope' in the schema cache"
