"""The PostgREST v16 read dialect over raw HTTP, on schema `library` (tests/fixtures/library.sql).

Every request carries `Accept-Profile: library` (except where a test is about profiles), every
list body is ordered with `order=` and compared exactly. Expected bodies, statuses, headers and
error texts follow PostgREST v16 (its docs, its source, and the conformance corpus in
/work/shared/conformance/corpus recorded against a real PostgREST v16; case numbers are cited).

The data, in short (library.sql has it all):
  authors 1 Ursula K. Le Guin 1929 · 2 Terry Pratchett 1948 · 3 N. K. Jemisin 1972 ·
          4 Ted Chiang 1967 · 5 Anonymous NULL (no books) · 6 Iain M. Banks 1954
  books   1 The Left Hand of Darkness 1969 a1 · 2 A Wizard of Earthsea 1968 a1 ·
          3 Guards! Guards! 1989 a2 · 4 The Fifth Season 2015 a3 ·
          5 Stories of Your Life, and Others 2002 a4 · 6 Excession 1996 a6 ·
          7 Untitled Manuscript 2021 (no author, NULLs) · 8 The Stone Sky 2017 a3
"""

from __future__ import annotations

import re

import pytest

from conftest import assert_pgrst_error, wait_until

PROFILE = {"Accept-Profile": "library"}
JSON_CT = "application/json; charset=utf-8"
ALL_BOOKS = [1, 2, 3, 4, 5, 6, 7, 8]


def get(http, target: str, headers: dict[str, str] | None = None):
    return http.get(target, headers={**PROFILE, **(headers or {})})


def rows(r, status: int = 200):
    """The JSON body of a successful JSON response (status checked, content type checked)."""
    assert r.status_code == status, f"{r.status_code} {r.text}"
    assert r.headers["content-type"] == JSON_CT, r.headers
    return r.json()


def ids(r) -> list[int]:
    return [row["id"] for row in rows(r)]


def book_ids(http, query: str) -> list[int]:
    """ids of /books matching `query` (a raw query string), in id order."""
    return ids(get(http, f"/books?select=id&order=id&{query}"))


# ---------------------------------------------------------------------------------------
# select
# ---------------------------------------------------------------------------------------


def test_select_columns(http):
    r = get(http, "/books?select=id,title&id=in.(1,2)&order=id")
    assert rows(r) == [{"id": 1, "title": "The Left Hand of Darkness"},
                       {"id": 2, "title": "A Wizard of Earthsea"}]
    assert r.headers["content-range"] == "0-1/*"
    # The schema was chosen by Accept-Profile: PostgREST names it back.
    assert r.headers["content-profile"] == "library"


def test_select_alias(http):
    r = get(http, "/books?select=book_id:id,name:title&id=eq.3")
    assert rows(r) == [{"book_id": 3, "name": "Guards! Guards!"}]


def test_select_cast(http):
    # corpus 1104/1105: casts change the JSON type; an alias goes with a cast.
    r = get(http, "/books?select=id::text,price::text,y:year::text&id=eq.4")
    assert rows(r) == [{"id": "4", "price": "15.00", "y": "2015"}]


def test_select_cast_unknown_type(http):
    # corpus 1106
    r = get(http, "/books?select=id::fakecolumntype")
    err = assert_pgrst_error(r.status_code, r.content, 400, "42704")
    assert err["message"] == 'type "fakecolumntype" does not exist'


def test_select_json_arrow_keeps_json(http):
    # -> keeps the JSON value (an array here); the key is the last path element.
    r = get(http, "/books?select=id,meta->awards&id=in.(1,2)&order=id")
    assert rows(r) == [{"id": 1, "awards": ["Hugo", "Nebula"]}, {"id": 2, "awards": []}]


def test_select_json_double_arrow_is_text(http):
    # ->> gives text: the array comes back as jsonb's text output, a string.
    r = get(http, "/books?select=id,meta->>awards,meta->>genre&id=eq.1")
    assert rows(r) == [{"id": 1, "awards": '["Hugo", "Nebula"]', "genre": "scifi"}]


def test_select_json_array_index(http):
    # corpus 1110: an index as last element keeps the last key ("awards") as the name;
    # a missing element or a NULL document gives null.
    r = get(http, "/books?select=id,meta->awards->0&id=in.(1,2,7)&order=id")
    assert rows(r) == [{"id": 1, "awards": "Hugo"}, {"id": 2, "awards": None},
                       {"id": 7, "awards": None}]


def test_select_json_path_alias_and_cast(http):
    r = get(http, "/books?select=id,first_award:meta->awards->>0,g:meta->genre::text"
                  "&id=eq.5")
    # meta->genre is jsonb "scifi"; cast to text it keeps its JSON quotes.
    assert rows(r) == [{"id": 5, "first_award": "Nebula", "g": '"scifi"'}]


def test_select_json_bad_path_is_400(http):
    # corpus 1111
    r = get(http, "/books?select=meta->>--34")
    err = assert_pgrst_error(r.status_code, r.content, 400, "PGRST100")
    assert err["message"] == '"failed to parse select parameter (meta->>--34)" (line 1, column 9)'
    assert err["details"] == 'unexpected "-" expecting digit'


AUTHORS = [
    {"id": 1, "name": "Ursula K. Le Guin", "born": 1929},
    {"id": 2, "name": "Terry Pratchett", "born": 1948},
    {"id": 3, "name": "N. K. Jemisin", "born": 1972},
    {"id": 4, "name": "Ted Chiang", "born": 1967},
    {"id": 5, "name": "Anonymous", "born": None},
    {"id": 6, "name": "Iain M. Banks", "born": 1954},
]


def test_select_star_and_default(http):
    assert rows(get(http, "/authors?select=*&order=id")) == AUTHORS
    assert rows(get(http, "/authors?order=id")) == AUTHORS


def test_select_star_every_column_type(http):
    # * is the table's columns (no computed column), each in its JSON form: jsonb as JSON,
    # tsvector and ranges as text, numeric as a number, int[] as an array.
    r = get(http, "/books?select=*&id=eq.1")
    assert rows(r) == [{
        "id": 1, "title": "The Left Hand of Darkness", "year": 1969, "author_id": 1,
        "meta": {"genre": "scifi", "awards": ["Hugo", "Nebula"]},
        "search": "'dark':5 'hand':3 'left':2", "price": 9.99, "in_stock": True,
        "scores": [5, 4, 5], "in_print": "[1969,1990)",
    }]
    r = get(http, "/books?select=*&id=eq.7")
    assert rows(r) == [{
        "id": 7, "title": "Untitled Manuscript", "year": 2021, "author_id": None,
        "meta": None, "search": "'manuscript':2 'untitl':1", "price": None,
        "in_stock": None, "scores": None, "in_print": None,
    }]


def test_select_quoted_names(http):
    r = get(http, '/tags?select=id,"shelf code",code:"shelf code"&id=in.(1,5)&order=id')
    assert rows(r) == [{"id": 1, "shelf code": "A-1", "code": "A-1"},
                       {"id": 5, "shelf code": None, "code": None}]
    # A quoted name in a filter and in order.
    r = get(http, '/tags?select=id&"shelf code"=eq.B-2')
    assert ids(r) == [2]
    r = get(http, '/tags?select=id&order="shelf code".desc.nullslast')
    assert ids(r) == [6, 4, 3, 2, 1, 5]


def test_computed_column_in_select(http):
    # corpus 1128: title_upper(library.books) reads like a column.
    r = get(http, "/books?select=id,title_upper&id=in.(3,4)&order=id")
    assert rows(r) == [{"id": 3, "title_upper": "GUARDS! GUARDS!"},
                       {"id": 4, "title_upper": "THE FIFTH SEASON"}]


def test_computed_column_in_filter_and_order(http):
    assert book_ids(http, "title_upper=like.*SEASON*") == [4]
    # corpus 1208: order by a computed column.
    r = get(http, "/books?select=id&id=in.(1,2,3)&order=title_upper")
    assert ids(r) == [2, 3, 1]


# ---------------------------------------------------------------------------------------
# filters: every operator (expected ids checked against the fixture data with SQL)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("query,expected", [
    # comparisons
    ("year=eq.1989", [3]),
    ("year=neq.1989", [1, 2, 4, 5, 6, 7, 8]),
    ("year=gt.2002", [4, 7, 8]),
    ("year=gte.2002", [4, 5, 7, 8]),
    ("year=lt.1969", [2]),
    ("year=lte.1969", [1, 2]),
    ("price=gte.12", [4, 5, 8]),
    # patterns: * is %
    ("title=like.*Sea*", [4]),
    ("title=ilike.*sea*", [2, 4]),
    ("title=match.^The", [1, 4, 8]),
    ("title=match.^the", []),
    ("title=imatch.^the", [1, 4, 8]),
    # in
    ("id=in.(1,3,5)", [1, 3, 5]),
    ('title=in.("Stories of Your Life, and Others","Guards! Guards!")', [3, 5]),
    ("id=in.()", []),
    # is
    ("author_id=is.null", [7]),
    ("author_id=is.not_null", [1, 2, 3, 4, 5, 6, 8]),
    ("in_stock=is.true", [1, 2, 4, 8]),
    ("in_stock=is.false", [3, 6]),
    ("in_stock=is.unknown", [5, 7]),
    ("in_stock=is.NULL", [5, 7]),               # case-insensitive (corpus 1058)
    # isdistinct: NULL-safe
    ("author_id=isdistinct.1", [3, 4, 5, 6, 7, 8]),
    # full-text search on the tsvector column
    ("search=fts.season", [4]),
    ("search=fts(english).seasons", [4]),
    ("search=plfts.stone sky", [8]),
    ("search=plfts(english).stone sky", [8]),
    ("search=phfts.fifth season", [4]),
    ("search=phfts(english).season fifth", []),
    ("search=wfts.stone -season", [8]),
    ("search=wfts(english).guards or sky", [3, 8]),
    # fts on a text column: to_tsvector() is applied to the column (corpus 10222)
    ("title=fts(english).guards", [3]),
    # arrays
    ("scores=cs.{5}", [1, 3, 4, 8]),
    ("scores=cd.{4,5}", [1, 2, 3, 5, 6, 8]),
    ("scores=ov.{1,3}", [4]),
    ("scores=eq.{4}", [2]),
    # ranges
    ("in_print=sl.[2000,2010)", [1, 3, 6]),
    ("in_print=sr.[2000,2010)", [4, 8]),
    ("in_print=nxr.[2000,2010)", [1, 3, 5, 6]),
    ("in_print=nxl.[2000,2010)", [4, 5, 8]),
    ("in_print=adj.[2000,2010)", [3, 6]),
    ("in_print=ov.[1985,1990)", [1, 2, 3]),
    ("in_print=cs.[1970,1980)", [1, 2]),
    ("in_print=cd.[1960,2000)", [1, 3, 6]),
    ("in_print=eq.[1989,2000)", [3]),
    # quantifiers
    ("id=eq(any).{1,3}", [1, 3]),
    ("year=gt(all).{1990,2010}", [4, 7, 8]),
    ("title=like(all).{*The*,*Season*}", [4]),
    ("title=like(any).{*Sky*,*Guards*}", [3, 8]),
    ("title=ilike(any).{*sky*,*guards*}", [3, 8]),
    # JSON paths in filters
    ("meta->>genre=eq.fantasy", [2, 3, 4, 8]),
    ("meta->awards->>0=eq.Hugo", [1, 4, 8]),
    ('meta->genre=eq."scifi"', [1, 5, 6]),
    # two filters AND together
    ("year=gte.2000&author_id=eq.3", [4, 8]),
    # a value may hold reserved characters outside logic trees
    ("title=eq.Stories of Your Life, and Others", [5]),
])
def test_filter_operator(http, query, expected):
    assert book_ids(http, query) == expected


@pytest.mark.parametrize("query,expected", [
    ("year=not.eq.1989", [1, 2, 4, 5, 6, 7, 8]),
    ("year=not.gt.2002", [1, 2, 3, 5, 6]),
    ("title=not.like.*The*", [2, 3, 5, 6, 7]),
    ("title=not.ilike.*SEA*", [1, 3, 5, 6, 7, 8]),
    ("title=not.imatch.^the", [2, 3, 5, 6, 7]),
    ("id=not.in.(1,3,5)", [2, 4, 6, 7, 8]),
    ("id=not.in.()", ALL_BOOKS),
    ("author_id=not.is.null", [1, 2, 3, 4, 5, 6, 8]),
    ("in_stock=not.is.true", [3, 5, 6, 7]),
    ("author_id=not.isdistinct.1", [1, 2]),
    ("search=not.fts.season", [1, 2, 3, 5, 6, 7, 8]),
    ("scores=not.cs.{5}", [2, 5, 6]),
    ("in_print=not.sl.[2000,2010)", [2, 4, 5, 8]),
    ("id=not.eq(any).{1,3}", [2, 4, 5, 6, 7, 8]),
    ("meta->>genre=not.eq.fantasy", [1, 5, 6]),   # NULL meta (7) matches neither
])
def test_filter_negated(http, query, expected):
    assert book_ids(http, query) == expected


@pytest.mark.parametrize("query,expected", [
    ("or=(year.lt.1969,year.gt.2016)", [2, 7, 8]),
    ("and=(year.gte.1968,year.lte.1969)", [1, 2]),
    ("not.or=(year.lt.1969,year.gt.2016)", [1, 3, 4, 5, 6]),
    ("not.and=(year.gte.1968,year.lte.1969)", [3, 4, 5, 6, 7, 8]),
    ("or=(id.eq.1,and(year.gt.2000,author_id.eq.3))", [1, 4, 8]),
    ("or=(id.eq.1,not.and(year.lte.2000,author_id.is.null))", ALL_BOOKS),
    ("and=(id.not.eq.1,scores.not.cs.{5})", [2, 5, 6]),
    ("or=(meta->>genre.eq.scifi,id.eq.3)", [1, 3, 5, 6]),
    ('or=(title.eq."Stories of Your Life, and Others",title.eq."Guards! Guards!")', [3, 5]),
    ('or=(title.like."*Life, and*",title.in.("Excession","The Stone Sky"))', [5, 6, 8]),
    ("or=(id.in.(1,2),search.fts.season)", [1, 2, 4]),
    ("or=( year.eq.1968 , year.eq.1989 )", [2, 3]),       # whitespace is allowed (1169)
    ("or=(id.eq.1,id.eq.2)&year=eq.1968", [2]),           # combined with a plain filter
])
def test_logic_trees(http, query, expected):
    assert book_ids(http, query) == expected


def test_logic_tree_without_conditions_is_400(http):
    # corpus 1167
    r = get(http, "/books?or=()")
    err = assert_pgrst_error(r.status_code, r.content, 400, "PGRST100")
    assert err == {
        "code": "PGRST100",
        "message": '"failed to parse logic tree (())" (line 1, column 4)',
        "details": 'unexpected ")" expecting field name (* or [a..z0..9_$]), '
                   "negation operator (not) or logic operator (and, or)",
        "hint": None,
    }


# ---------------------------------------------------------------------------------------
# hostile input: 400s with PostgREST's codes, never a 500, and the server carries on
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("target,code", [
    # A double quote (escaped as \", the backslash sent as %5C) inside a quoted column name:
    # just an odd name, which does not exist.
    ('/books?select="ti%5C"tle"', "42703"),
    ('/books?select=id&"ti%5C"tle"=eq.x', "42703"),
    # A semicolon (sent encoded, %3B) inside a quoted column name.
    ('/books?select="id%3B select 1"', "42703"),
    ('/books?select=id&order="id%3B drop table library.books"', "42703"),
    ("/books?select=nope", "42703"),
    # NUL bytes cannot become text.
    ("/books?select=ti%00tle", "22021"),
    ("/books?title=eq.a%00b", "22021"),
    # Grammar errors.
    ("/books?year=foo.1", "PGRST100"),
    ("/books?in_stock=is.nil", "PGRST100"),
    ("/books?select=id,(", "PGRST100"),
    ("/books?select=id,authors(name", "PGRST100"),
    ("/books?order=id.sideways", "PGRST100"),
    ("/books?or=(id.eq.1", "PGRST100"),
    ("/books?id=in.1,2", "PGRST100"),
])
def test_hostile_input_is_400(pg, http, target, code):
    r = get(http, target)
    err = assert_pgrst_error(r.status_code, r.content, 400, code)
    if code == "22021":
        assert err["message"] == 'invalid byte sequence for encoding "UTF8": 0x00', err
    # The table is intact and the server still answers.
    assert pg.sql("SELECT count(*) FROM library.books")[0][0] == 8
    assert book_ids(http, "id=eq.1") == [1]


def test_unknown_column_message(http):
    r = get(http, '/books?select="ti%5C"tle"')
    err = assert_pgrst_error(r.status_code, r.content, 400, "42703")
    assert err["message"] == 'column books.ti"tle does not exist', err


def test_parse_error_messages(http):
    r = get(http, "/books?year=foo.1")
    err = assert_pgrst_error(r.status_code, r.content, 400, "PGRST100")
    assert err["message"].startswith('"failed to parse filter (foo.1)" (line 1, column '), err
    r = get(http, "/books?select=id,(")
    err = assert_pgrst_error(r.status_code, r.content, 400, "PGRST100")
    assert err["message"].startswith(
        '"failed to parse select parameter (id,()" (line 1, column '), err
    # corpus 1218
    r = get(http, "/books?order=id.asc.nullslasttt")
    err = assert_pgrst_error(r.status_code, r.content, 400, "PGRST100")
    assert err == {
        "code": "PGRST100",
        "message": '"failed to parse order (id.asc.nullslasttt)" (line 1, column 17)',
        "details": "unexpected 't' expecting \",\" or end of input",
        "hint": None,
    }


def test_sql_in_a_value_is_only_a_value(pg, http):
    assert book_ids(http, "title=eq.x'%3B drop table library.books%3B --") == []
    assert book_ids(http, "or=(title.eq.x'%3B delete from library.books,id.eq.2)") == [2]
    assert pg.sql("SELECT count(*) FROM library.books")[0][0] == 8


# ---------------------------------------------------------------------------------------
# resource embedding
# ---------------------------------------------------------------------------------------


def test_embed_many_to_one_is_an_object(http):
    # corpus 1112/1113: to-one is an object, null when there is no parent.
    r = get(http, "/books?select=title,authors(name)&id=in.(1,3,7)&order=id")
    assert rows(r) == [
        {"title": "The Left Hand of Darkness", "authors": {"name": "Ursula K. Le Guin"}},
        {"title": "Guards! Guards!", "authors": {"name": "Terry Pratchett"}},
        {"title": "Untitled Manuscript", "authors": None},
    ]


def test_embed_star(http):
    r = get(http, "/books?select=id,authors(*)&id=eq.3")
    assert rows(r) == [{"id": 3, "authors": {"id": 2, "name": "Terry Pratchett", "born": 1948}}]


def test_embed_one_to_many_is_an_array(http):
    # corpus 1114: no children is [].
    r = get(http, "/authors?select=name,books(title)&id=in.(1,5)&order=id&books.order=id")
    assert rows(r) == [
        {"name": "Ursula K. Le Guin",
         "books": [{"title": "The Left Hand of Darkness"}, {"title": "A Wizard of Earthsea"}]},
        {"name": "Anonymous", "books": []},
    ]


def test_embed_one_to_one_both_ways(http):
    # corpus 1134: the FK is the primary key: an object from either side.
    r = get(http, "/authors?select=name,author_profiles(bio)&id=in.(1,3)&order=id")
    assert rows(r) == [
        {"name": "Ursula K. Le Guin", "author_profiles": {"bio": "Wrote Earthsea."}},
        {"name": "N. K. Jemisin", "author_profiles": None},
    ]
    r = get(http, "/author_profiles?select=bio,authors(name)&order=author_id")
    assert rows(r) == [
        {"bio": "Wrote Earthsea.", "authors": {"name": "Ursula K. Le Guin"}},
        {"bio": "Discworld.", "authors": {"name": "Terry Pratchett"}},
        {"bio": "Short fiction.", "authors": {"name": "Ted Chiang"}},
    ]


def test_embed_many_to_many(http):
    # corpus 1117: through the junction book_tags.
    r = get(http, "/books?select=title,tags(name)&id=in.(1,6)&order=id&tags.order=name")
    assert rows(r) == [
        {"title": "The Left Hand of Darkness",
         "tags": [{"name": "award-winner"}, {"name": "classic"}]},
        {"title": "Excession", "tags": []},
    ]
    r = get(http, "/tags?select=name,books(id)&id=in.(2,6)&order=id&books.order=id")
    assert rows(r) == [
        {"name": "award-winner", "books": [{"id": 1}, {"id": 4}, {"id": 5}, {"id": 8}]},
        {"name": "unread", "books": []},
    ]


def test_embed_nested(http):
    # corpus 1115
    r = get(http, "/authors?select=name,books(title,reviews(stars))&id=in.(1,3)&order=id"
                  "&books.order=id&books.reviews.order=id")
    assert rows(r) == [
        {"name": "Ursula K. Le Guin", "books": [
            {"title": "The Left Hand of Darkness", "reviews": [{"stars": 5}, {"stars": 4}]},
            {"title": "A Wizard of Earthsea", "reviews": []},
        ]},
        {"name": "N. K. Jemisin", "books": [
            {"title": "The Fifth Season", "reviews": [{"stars": 5}, {"stars": 3}]},
            {"title": "The Stone Sky", "reviews": [{"stars": 5}]},
        ]},
    ]


def test_embed_renamed(http):
    # corpus 1116
    r = get(http, "/books?select=title,writer:authors(name)&id=eq.4")
    assert rows(r) == [{"title": "The Fifth Season", "writer": {"name": "N. K. Jemisin"}}]
    # Filters on an aliased embed use the alias.
    r = get(http, "/books?select=id,writer:authors!inner(name)&writer.name=eq.Ted Chiang")
    assert rows(r) == [{"id": 5, "writer": {"name": "Ted Chiang"}}]


def test_embed_inner_filters_parents(http):
    # corpus 1118/1121: !inner drops the parents whose embed is empty.
    r = get(http, "/books?select=id,authors!inner(name)&authors.name=eq.N. K. Jemisin&order=id")
    assert rows(r) == [{"id": 4, "authors": {"name": "N. K. Jemisin"}},
                       {"id": 8, "authors": {"name": "N. K. Jemisin"}}]
    # Without a filter: the book without an author is gone.
    r = get(http, "/books?select=id,authors!inner(id)&order=id")
    assert ids(r) == [1, 2, 3, 4, 5, 6, 8]
    # One-to-many.
    r = get(http, "/authors?select=id,books!inner(id)&books.year=gte.2015&order=id"
                  "&books.order=id")
    assert rows(r) == [{"id": 3, "books": [{"id": 4}, {"id": 8}]}]


def test_embed_left_keeps_parents(http):
    # corpus 1119: !left (the default) keeps every parent; the filter only empties embeds.
    r = get(http, "/books?select=id,authors!left(name)&authors.name=eq.Terry Pratchett"
                  "&order=id")
    assert rows(r) == [{"id": i, "authors": {"name": "Terry Pratchett"} if i == 3 else None}
                       for i in ALL_BOOKS]


def test_embed_disambiguation_by_fk_name_and_column(http):
    # corpus 1122/1123: loans has two FKs to authors.
    r = get(http, "/loans?select=id,lender:authors!lender_id(name),"
                  "borrower:authors!loans_borrower_id_fkey(name)&order=id")
    assert rows(r) == [
        {"id": 1, "lender": {"name": "Terry Pratchett"}, "borrower": {"name": "N. K. Jemisin"}},
        {"id": 2, "lender": {"name": "Ursula K. Le Guin"}, "borrower": {"name": "Ted Chiang"}},
        {"id": 3, "lender": {"name": "N. K. Jemisin"}, "borrower": {"name": "Ursula K. Le Guin"}},
        {"id": 4, "lender": {"name": "Ted Chiang"}, "borrower": None},
    ]
    # The FK column as the embed target.
    r = get(http, "/loans?select=id,lender_id(name)&id=eq.1")
    assert rows(r) == [{"id": 1, "lender_id": {"name": "Terry Pratchett"}}]
    # From the other side (one-to-many), the hint names the loans column.
    r = get(http, "/authors?select=name,lent:loans!lender_id(id),borrowed:loans!borrower_id(id)"
                  "&id=eq.1")
    assert rows(r) == [{"name": "Ursula K. Le Guin", "lent": [{"id": 2}], "borrowed": [{"id": 3}]}]


def test_embed_ambiguous_is_300(http):
    # corpus 1125: 300 Multiple Choices, the candidates in details (sorted by constraint).
    r = get(http, "/loans?select=id,authors(name)")
    assert r.status_code == 300, r.text
    assert r.headers["content-type"] == JSON_CT
    assert r.json() == {
        "code": "PGRST201",
        "message": "Could not embed because more than one relationship was found for "
                   "'loans' and 'authors'",
        "details": [
            {"cardinality": "many-to-one",
             "relationship": "loans_borrower_id_fkey using loans(borrower_id) and authors(id)",
             "embedding": "loans with authors"},
            {"cardinality": "many-to-one",
             "relationship": "loans_lender_id_fkey using loans(lender_id) and authors(id)",
             "embedding": "loans with authors"},
        ],
        "hint": "Try changing 'authors' to one of the following: "
                "'authors!loans_borrower_id_fkey', 'authors!loans_lender_id_fkey'. "
                "Find the desired relationship in the 'details' key.",
    }


def test_embed_ambiguous_one_to_many_is_300(http):
    r = get(http, "/authors?select=name,loans(id)")
    assert r.status_code == 300, r.text
    body = r.json()
    assert body["code"] == "PGRST201"
    assert body["details"] == [
        {"cardinality": "one-to-many",
         "relationship": "loans_borrower_id_fkey using authors(id) and loans(borrower_id)",
         "embedding": "authors with loans"},
        {"cardinality": "one-to-many",
         "relationship": "loans_lender_id_fkey using authors(id) and loans(lender_id)",
         "embedding": "authors with loans"},
    ]


def test_embed_no_relationship_is_400(http):
    # corpus 1124: a hint that matches nothing.
    r = get(http, "/books?select=title,authors!nonexistent(name)")
    err = assert_pgrst_error(r.status_code, r.content, 400, "PGRST200")
    assert err == {
        "code": "PGRST200",
        "message": "Could not find a relationship between 'books' and 'authors' "
                   "in the schema cache",
        "details": "Searched for a foreign key relationship between 'books' and 'authors' "
                   "using the hint 'nonexistent' in the schema 'library', but no matches "
                   "were found.",
        "hint": None,
    }
    # No foreign key at all between the two.
    r = get(http, "/tags?select=name,authors(name)")
    err = assert_pgrst_error(r.status_code, r.content, 400, "PGRST200")
    assert err["message"] == ("Could not find a relationship between 'tags' and 'authors' "
                              "in the schema cache")
    assert err["details"] == ("Searched for a foreign key relationship between 'tags' and "
                              "'authors' in the schema 'library', but no matches were found.")


def test_embedded_filter_needs_the_embed(http):
    # corpus 1185
    r = get(http, "/books?select=id&authors.name=eq.x")
    err = assert_pgrst_error(r.status_code, r.content, 400, "PGRST108")
    assert err["message"] == "'authors' is not an embedded resource in this request"
    assert err["hint"] == "Verify that 'authors' is included in the 'select' query parameter."


def test_embedded_filter(http):
    r = get(http, "/authors?select=name,books(title)&books.year=gte.2000&id=in.(1,3)&order=id"
                  "&books.order=id")
    assert rows(r) == [
        {"name": "Ursula K. Le Guin", "books": []},
        {"name": "N. K. Jemisin",
         "books": [{"title": "The Fifth Season"}, {"title": "The Stone Sky"}]},
    ]


def test_embedded_order_and_limit(http):
    r = get(http, "/authors?select=id,books(year)&id=in.(1,3)&order=id&books.order=year.desc")
    assert rows(r) == [{"id": 1, "books": [{"year": 1969}, {"year": 1968}]},
                       {"id": 3, "books": [{"year": 2017}, {"year": 2015}]}]
    # corpus 1276: limit per parent.
    r = get(http, "/authors?select=id,books(year)&id=in.(1,3)&order=id&books.order=year.desc"
                  "&books.limit=1")
    assert rows(r) == [{"id": 1, "books": [{"year": 1969}]}, {"id": 3, "books": [{"year": 2017}]}]
    r = get(http, "/authors?select=id,books(year)&id=eq.3&books.order=year&books.offset=1")
    assert rows(r) == [{"id": 3, "books": [{"year": 2017}]}]


def test_an_aliased_embed_named_by_its_relation_is_served_with_a_warning(http):
    # corpus 1028: PostgREST v16's deprecation Warning (299, pg_rest's own product token).
    r = get(http, "/authors?select=id,written:books(year)&id=eq.1&books.order=year.desc"
                  "&books.limit=1")
    assert rows(r) == [{"id": 1, "written": [{"year": 1969}]}]
    assert r.headers["warning"] == (
        '299 pg_rest "Embedded resource was referenced by relation name even though it has an '
        'alias. This is deprecated and will stop working in a future release. Update `books` '
        'to `written` in query string filters, orders or limits."')
    r = get(http, "/authors?select=id,written:books(year)&id=eq.1&written.limit=1")
    assert "warning" not in r.headers


def test_embedded_logic_tree(http):
    # corpus 1182
    r = get(http, "/authors?select=id,books(id)&id=in.(1,3)&order=id"
                  "&books.or=(year.lt.1969,year.gt.2016)&books.order=id")
    assert rows(r) == [{"id": 1, "books": [{"id": 2}]}, {"id": 3, "books": [{"id": 8}]}]


def test_embed_anti_join(http):
    # corpus 1186/1187: an empty embed is not shown; is.null keeps the childless parents.
    r = get(http, "/authors?select=name,books()&books=is.null&order=id")
    assert rows(r) == [{"name": "Anonymous"}]
    r = get(http, "/authors?select=id,books()&books=not.is.null&order=id")
    assert rows(r) == [{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}, {"id": 6}]


def test_embed_spread(http):
    # corpus 1126: the to-one columns join the parent; no parent gives nulls.
    r = get(http, "/books?select=title,...authors(author_name:name,born)&id=in.(3,7)&order=id")
    assert rows(r) == [
        {"title": "Guards! Guards!", "author_name": "Terry Pratchett", "born": 1948},
        {"title": "Untitled Manuscript", "author_name": None, "born": None},
    ]


def test_embed_through_a_view(http):
    # recent_books (a view over books) keeps books' foreign key to authors.
    r = get(http, "/recent_books?select=id,title,authors(name)&order=id")
    assert rows(r) == [
        {"id": 4, "title": "The Fifth Season", "authors": {"name": "N. K. Jemisin"}},
        {"id": 5, "title": "Stories of Your Life, and Others", "authors": {"name": "Ted Chiang"}},
        {"id": 7, "title": "Untitled Manuscript", "authors": None},
        {"id": 8, "title": "The Stone Sky", "authors": {"name": "N. K. Jemisin"}},
    ]
    r = get(http, "/authors?select=name,recent_books(id)&id=eq.3&recent_books.order=id")
    assert rows(r) == [{"name": "N. K. Jemisin", "recent_books": [{"id": 4}, {"id": 8}]}]


def test_embed_computed_relationship(http):
    # corpus 1136: top_review(library.books) ROWS 1 is a to-one embed.
    r = get(http, "/books?select=id,top_review(stars,reviewer)&id=in.(1,2,4)&order=id")
    assert rows(r) == [{"id": 1, "top_review": {"stars": 5, "reviewer": "ann"}},
                       {"id": 2, "top_review": None},
                       {"id": 4, "top_review": {"stars": 5, "reviewer": "cid"}}]


def test_order_by_to_one_embed(http):
    # corpus 1214
    r = get(http, "/books?select=id,authors(name)&id=in.(1,2,3,5,7)"
                  "&order=authors(name).desc.nullslast,id")
    assert rows(r) == [
        {"id": 1, "authors": {"name": "Ursula K. Le Guin"}},
        {"id": 2, "authors": {"name": "Ursula K. Le Guin"}},
        {"id": 3, "authors": {"name": "Terry Pratchett"}},
        {"id": 5, "authors": {"name": "Ted Chiang"}},
        {"id": 7, "authors": None},
    ]
    r = get(http, "/books?select=id,writer:authors(born)&id=in.(3,4,5)&order=writer(born)")
    assert ids(r) == [3, 5, 4]


def test_order_by_to_many_embed_is_400(http):
    # corpus 1216
    r = get(http, "/authors?select=name,books(title)&order=books(title)")
    err = assert_pgrst_error(r.status_code, r.content, 400, "PGRST118")
    assert err["message"] == "A related order on 'books' is not possible"
    assert err["details"] == ("'authors' and 'books' do not form a many-to-one or one-to-one "
                              "relationship")


# ---------------------------------------------------------------------------------------
# order
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("target,expected", [
    ("/books?select=id&order=year.desc", [7, 8, 4, 5, 6, 3, 1, 2]),
    ("/books?select=id&order=year.asc", [2, 1, 3, 6, 5, 4, 8, 7]),
    ("/books?select=id&order=author_id.desc.nullslast,year", [6, 5, 4, 8, 3, 2, 1, 7]),
    ("/books?select=id&order=author_id.nullsfirst,year.desc", [7, 1, 2, 3, 8, 4, 5, 6]),
    ("/books?select=id&order=price.desc.nullslast", [8, 4, 5, 6, 1, 2, 3, 7]),
    ("/authors?select=id&order=born", [1, 2, 6, 4, 3, 5]),
    ("/authors?select=id&order=born.nullsfirst", [5, 1, 2, 6, 4, 3]),
    ("/authors?select=id&order=born.desc", [5, 3, 4, 6, 2, 1]),          # desc: NULLs first
    ("/authors?select=id&order=born.desc.nullslast", [3, 4, 6, 2, 1, 5]),
    # JSON paths (corpus 1209/1210)
    ("/books?select=id&order=meta->>genre.desc.nullslast,id", [1, 5, 6, 2, 3, 4, 8, 7]),
    ("/books?select=id&order=meta->>genre.nullsfirst,id.desc", [7, 8, 4, 3, 2, 6, 5, 1]),
    ("/books?select=id&order=meta->awards->>0,id", [1, 4, 8, 3, 5, 2, 6, 7]),
])
def test_order(http, target, expected):
    assert ids(get(http, target)) == expected


def test_order_unknown_column(http):
    r = get(http, "/books?order=nope")
    assert_pgrst_error(r.status_code, r.content, 400, "42703")


# ---------------------------------------------------------------------------------------
# limit, offset, Range, counts
# ---------------------------------------------------------------------------------------


def test_limit_offset(http):
    r = get(http, "/books?select=id&order=id&limit=2&offset=2")
    assert ids(r) == [3, 4]
    assert r.headers["content-range"] == "2-3/*"
    r = get(http, "/books?select=id&order=id&offset=6")
    assert ids(r) == [7, 8]
    assert r.headers["content-range"] == "6-7/*"
    # Past the end without a count: empty, 200.
    r = get(http, "/books?select=id&order=id&offset=100")
    assert rows(r) == [] and r.headers["content-range"] == "*/*"


def test_range_header(http):
    # corpus 1259
    r = get(http, "/books?select=id&order=id", {"Range-Unit": "items", "Range": "0-1"})
    assert r.status_code == 200
    assert ids(r) == [1, 2]
    assert r.headers["content-range"] == "0-1/*"


def test_empty_result_content_range(http):
    # corpus 1268 / 1269: */* without a count, */0 with count=exact.
    r = get(http, "/books?select=id&id=eq.999")
    assert rows(r) == [] and r.headers["content-range"] == "*/*"
    r = get(http, "/books?select=id&id=eq.999", {"Prefer": "count=exact"})
    assert rows(r) == [] and r.headers["content-range"] == "*/0"


def test_count_exact(http):
    # corpus 1270/1271: 206 when the range is part of the total, 200 for the whole set.
    r = get(http, "/books?select=id&order=id&limit=2", {"Prefer": "count=exact"})
    assert r.status_code == 206, r.text
    assert r.json() == [{"id": 1}, {"id": 2}]
    assert r.headers["content-range"] == "0-1/8"
    assert r.headers["preference-applied"] == "count=exact"
    r = get(http, "/books?select=id&order=id", {"Prefer": "count=exact"})
    assert ids(r) == ALL_BOOKS
    assert r.headers["content-range"] == "0-7/8"
    # The total counts the filtered rows.
    r = get(http, "/books?select=id&order=id&year=gte.2000", {"Prefer": "count=exact"})
    assert ids(r) == [4, 5, 7, 8]
    assert r.headers["content-range"] == "0-3/4"
    # With a Range header.
    r = get(http, "/books?select=id&order=id", {"Prefer": "count=exact", "Range": "2-4"})
    assert r.status_code == 206, r.text
    assert r.json() == [{"id": 3}, {"id": 4}, {"id": 5}]
    assert r.headers["content-range"] == "2-4/8"


def test_count_none_has_no_preference_applied(http):
    # corpus 1267
    r = get(http, "/books?select=id&order=id", {"Prefer": "count=none"})
    assert ids(r) == ALL_BOOKS
    assert r.headers["content-range"] == "0-7/*"
    assert "preference-applied" not in r.headers


@pytest.mark.parametrize("method", ["planned", "estimated"])
def test_count_planned_and_estimated_shape(http, method):
    r = get(http, "/books?select=id&order=id&limit=2", {"Prefer": f"count={method}"})
    assert r.status_code in (200, 206), r.text
    assert r.json() == [{"id": 1}, {"id": 2}]
    assert re.fullmatch(r"0-1/\d+", r.headers["content-range"]), r.headers["content-range"]
    assert r.headers["preference-applied"] == f"count={method}"


def test_offset_past_the_end_with_count_is_416(http):
    # corpus 1257
    r = get(http, "/books?offset=100", {"Prefer": "count=exact"})
    err = assert_pgrst_error(r.status_code, r.content, 416, "PGRST103")
    assert err == {
        "code": "PGRST103",
        "message": "Requested range not satisfiable",
        "details": "An offset of 100 was requested, but there are only 8 rows.",
        "hint": None,
    }
    assert r.headers["content-range"] == "*/8"


def test_negative_limit_and_reversed_range_are_416(http):
    # corpus 1254/1265
    r = get(http, "/books?limit=-1")
    err = assert_pgrst_error(r.status_code, r.content, 416, "PGRST103")
    assert err["details"] == "Limit should be greater than or equal to zero."
    r = get(http, "/books", {"Range-Unit": "items", "Range": "1-0"})
    err = assert_pgrst_error(r.status_code, r.content, 416, "PGRST103")
    assert err["details"] == ("The lower boundary must be lower than or equal to the upper "
                              "boundary in the Range header.")


def test_head(http):
    # corpus 1277: the headers of the GET, no body.
    r = http.head("/books?select=id&order=id&limit=2&offset=1", headers=PROFILE)
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-type"] == JSON_CT
    assert r.headers["content-range"] == "1-2/*"
    assert r.headers["content-profile"] == "library"
    r = http.head("/books?select=id&limit=2", headers={**PROFILE, "Prefer": "count=exact"})
    assert r.status_code == 206
    assert r.content == b""
    assert r.headers["content-range"] == "0-1/8"


# ---------------------------------------------------------------------------------------
# media types
# ---------------------------------------------------------------------------------------

OBJECT = "application/vnd.pgrst.object+json"


def test_singular_object(http):
    # corpus 1610
    r = get(http, "/books?select=id,title,authors(name)&id=eq.5", {"Accept": OBJECT})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.pgrst.object+json; charset=utf-8"
    assert r.json() == {"id": 5, "title": "Stories of Your Life, and Others",
                        "authors": {"name": "Ted Chiang"}}


@pytest.mark.parametrize("query,n", [("id=eq.999", 0), ("year=gte.2000", 4), ("", 8)])
def test_singular_object_needs_one_row(http, query, n):
    # corpus 1612/1613/1633
    r = get(http, "/books?select=id" + (f"&{query}" if query else ""), {"Accept": OBJECT})
    err = assert_pgrst_error(r.status_code, r.content, 406, "PGRST116")
    assert r.headers["content-type"] == JSON_CT
    assert err == {"code": "PGRST116",
                   "message": "Cannot coerce the result to a single JSON object",
                   "details": f"The result contains {n} rows", "hint": None}


def test_csv(http):
    # corpus 1606: a header row from the keys, values as in a record's text form: quoted
    # when they hold a comma, a quote or a space, quotes doubled, NULL empty; no final newline.
    r = get(http, "/reviews?select=id,stars,body,reviewer&order=id", {"Accept": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.text == (
        "id,stars,body,reviewer\n"
        '1,5,"A classic, truly.",ann\n'
        '2,4,"Slow start",\n'
        '3,5,"Funny, ""laugh-out-loud"" stuff",bob\n'
        "4,5,Stunning,cid\n"
        "5,3,,dee\n"
        "6,4,Clever,ann\n"
        '7,5,"Worthy ending",'
    )


def test_csv_arrays_ranges_and_header_names(http):
    r = get(http, "/books?select=id,title,scores,in_print&id=in.(5,6,7)&order=id",
            {"Accept": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.text == (
        "id,title,scores,in_print\n"
        '5,"Stories of Your Life, and Others","{4,4}","[2002,2010)"\n'
        '6,Excession,{},"[1996,2000)"\n'
        '7,"Untitled Manuscript",,'
    )
    r = get(http, "/tags?order=id", {"Accept": "text/csv"})
    assert r.text == ("id,name,shelf code\n1,classic,A-1\n2,award-winner,B-2\n3,humor,C-3\n"
                      "4,series,D-4\n5,short-stories,\n6,unread,Z-9")


def test_nulls_stripped(http):
    # corpus 1630/1634: null keys are dropped, other keys kept.
    r = get(http, "/reviews?select=id,body,reviewer&order=id",
            {"Accept": "application/vnd.pgrst.array+json;nulls=stripped"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == \
        "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8"
    assert r.json() == [
        {"id": 1, "body": "A classic, truly.", "reviewer": "ann"},
        {"id": 2, "body": "Slow start"},
        {"id": 3, "body": 'Funny, "laugh-out-loud" stuff', "reviewer": "bob"},
        {"id": 4, "body": "Stunning", "reviewer": "cid"},
        {"id": 5, "reviewer": "dee"},
        {"id": 6, "body": "Clever", "reviewer": "ann"},
        {"id": 7, "body": "Worthy ending"},
    ]
    # Without nulls=stripped the nulls stay (corpus 1635).
    r = get(http, "/reviews?select=id,reviewer&id=eq.2",
            {"Accept": "application/vnd.pgrst.array+json"})
    assert rows(r) == [{"id": 2, "reviewer": None}]


def test_singular_nulls_stripped(http):
    # corpus 1632
    r = get(http, "/books?select=id,author_id,price&id=eq.7",
            {"Accept": "application/vnd.pgrst.object+json;nulls=stripped"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == \
        "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8"
    assert r.json() == {"id": 7}


def test_unknown_media_type_is_406(http):
    # corpus 1602/1603
    r = get(http, "/books", {"Accept": "text/unknowntype"})
    err = assert_pgrst_error(r.status_code, r.content, 406, "PGRST107")
    assert err["message"] == "None of these media types are available: text/unknowntype"
    r = get(http, "/books?select=id&id=eq.1", {"Accept": "text/unknowntype, */*"})
    assert rows(r) == [{"id": 1}]


# ---------------------------------------------------------------------------------------
# profiles (schemas)
# ---------------------------------------------------------------------------------------


def test_profiles_reach_different_tables(http):
    r = http.get("/books?id=eq.1")
    assert rows(r) == [{"id": 1, "title": "The Rust Programming Language",
                        "author": "Steve Klabnik", "year": 2018}]
    assert r.headers["content-profile"] == "public"   # several schemas: the default is named
    r = http.get("/books?id=eq.1&select=id,title", headers={"Accept-Profile": "public"})
    assert rows(r) == [{"id": 1, "title": "The Rust Programming Language"}]
    r = get(http, "/books?id=eq.1&select=id,title")
    assert rows(r) == [{"id": 1, "title": "The Left Hand of Darkness"}]
    assert r.headers["content-profile"] == "library"


def test_table_of_another_schema_is_404(http):
    r = http.get("/reviews")
    err = assert_pgrst_error(r.status_code, r.content, 404, "PGRST205")
    assert err["message"] == "Could not find the table 'public.reviews' in the schema cache"
    r = get(http, "/nope")
    err = assert_pgrst_error(r.status_code, r.content, 404, "PGRST205")
    assert err["message"] == "Could not find the table 'library.nope' in the schema cache"


def test_unknown_profile_is_406(http):
    # corpus 1010/1560
    r = http.get("/books", headers={"Accept-Profile": "nope"})
    err = assert_pgrst_error(r.status_code, r.content, 406, "PGRST106")
    assert err == {"code": "PGRST106", "message": "Invalid schema: nope", "details": None,
                   "hint": "Only the following schemas are exposed: public, library, shop"}


# ---------------------------------------------------------------------------------------
# Prefer: handling
# ---------------------------------------------------------------------------------------


def test_prefer_handling_strict_rejects_unknown_preferences(http):
    # corpus 1551
    r = get(http, "/books?select=id&id=eq.1", {"Prefer": "handling=strict, anything"})
    err = assert_pgrst_error(r.status_code, r.content, 400, "PGRST122")
    assert err == {"code": "PGRST122",
                   "message": "Invalid preferences given with handling=strict",
                   "details": "Invalid preferences: anything", "hint": None}
    # Known preferences are fine under strict.
    r = get(http, "/books?select=id&id=eq.1", {"Prefer": "handling=strict, count=exact"})
    assert rows(r) == [{"id": 1}]
    assert r.headers["content-range"] == "0-0/1"
    assert r.headers["preference-applied"] == "count=exact, handling=strict"


def test_prefer_handling_lenient_ignores_unknown_preferences(http):
    # corpus 1552
    r = get(http, "/books?select=id&id=eq.1", {"Prefer": "handling=lenient, anything"})
    assert rows(r) == [{"id": 1}]
    assert r.headers["preference-applied"] == "handling=lenient"
    r = get(http, "/books?select=id&id=eq.1", {"Prefer": "anything"})
    assert rows(r) == [{"id": 1}]


# ---------------------------------------------------------------------------------------
# OPTIONS, CORS
# ---------------------------------------------------------------------------------------


def test_options_allow(http):
    # corpus 1019/1033/1034
    r = http.options("/books", headers=PROFILE)
    assert r.status_code == 200, r.text
    assert r.headers["allow"] == "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE"
    assert r.content == b""
    r = http.options("/", headers=PROFILE)
    assert r.status_code == 200
    assert r.headers["allow"] == "OPTIONS,GET,HEAD"
    r = http.options("/nope", headers=PROFILE)
    assert r.status_code == 404


def test_cors_actual_request(http):
    # Every origin is allowed by default (corpus 1703): `*`, and the PostgREST headers exposed.
    r = get(http, "/books?select=id&id=eq.1", {"Origin": "http://example.com"})
    assert rows(r) == [{"id": 1}]
    assert r.headers["access-control-allow-origin"] == "*"
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"content-range", "content-type", "location", "range-unit"} <= exposed, exposed
    # Without Origin, no CORS headers.
    r = get(http, "/books?select=id&id=eq.1")
    assert "access-control-allow-origin" not in r.headers


def test_cors_preflight(http):
    r = http.options("/books", headers={
        **PROFILE,
        "Origin": "http://example.com",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Accept-Profile, Prefer",
    })
    assert r.status_code == 200, r.text
    assert r.content == b""
    assert r.headers["access-control-allow-origin"] == "*"
    methods = {m.strip() for m in r.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"} <= methods, methods
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "accept-profile", "prefer"} <= allowed, allowed
    assert r.headers["access-control-max-age"] == "86400"


# ---------------------------------------------------------------------------------------
# OpenAPI at /
# ---------------------------------------------------------------------------------------


def test_openapi_root_of_the_profile(http):
    # corpus 1650/1651
    r = http.get("/", headers=PROFILE)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/openapi+json; charset=utf-8"
    doc = r.json()
    assert doc["swagger"] == "2.0"
    for path in ("/books", "/authors", "/recent_books", "/loans"):
        assert path in doc["paths"], sorted(doc["paths"])
    assert "/books_view" not in doc["paths"]      # public's, not library's
    props = doc["definitions"]["books"]["properties"]
    assert {"id", "title", "year", "author_id", "meta", "search", "price", "in_stock",
            "scores", "in_print"} <= set(props), sorted(props)
    assert props["id"]["type"] == "integer"
    assert props["title"]["type"] == "string"
    assert props["scores"]["type"] == "array"


def test_openapi_type_names_as_the_server_path_shows_them(pg, http):
    # corpus 1668: a type outside the server's default search_path is named with its schema,
    # also when the worker reloading the cache last served a request on that schema (whose
    # search_path the session then holds). The worker's own role must be able to use the
    # schema for the path to count it (PostgreSQL skips schemas it may not use).
    pg.psql("GRANT USAGE ON SCHEMA library TO authenticator;")
    assert http.get("/books?limit=0", headers=PROFILE).status_code == 200
    pg.psql("CREATE TYPE library.shelf_colour AS ENUM ('red', 'blue');"
            "CREATE TABLE library.shelves (id int PRIMARY KEY, colour library.shelf_colour);"
            "GRANT SELECT ON library.shelves TO web_anon;")
    try:
        def shelves():
            # Each request leaves the session on library's search_path for the next reload.
            doc = http.get("/", headers=PROFILE).json()
            return doc["definitions"].get("shelves")
        wait_until(lambda: shelves() is not None, 10, interval=0.1, what="shelves in OpenAPI")
        colour = shelves()["properties"]["colour"]
        assert colour["format"] == "library.shelf_colour", colour
        assert colour["enum"] == ["red", "blue"], colour
    finally:
        pg.psql("DROP TABLE library.shelves; DROP TYPE library.shelf_colour;"
                "REVOKE USAGE ON SCHEMA library FROM authenticator;")


def test_server_timing_and_trace_header(pg):
    """pg_rest.server_timing and pg_rest.trace_header (PostgREST's server-timing-enabled and
    server-trace-header)."""
    r = pg.get("/books?id=eq.1", headers={"X-Request-Id": "abc-1"})
    assert "server-timing" not in r.headers and "x-request-id" not in r.headers
    with pg.reload_with(server_timing="on", trace_header="X-Request-Id"):
        r = pg.get("/books?id=eq.1", headers={"X-Request-Id": "abc-1"})
        assert r.status_code == 200, r.text
        assert r.headers["x-request-id"] == "abc-1"
        stages = [part.split(";")[0] for part in r.headers["server-timing"].split(", ")]
        assert stages == ["jwt", "parse", "plan", "transaction", "response"], \
            r.headers["server-timing"]
        for part in r.headers["server-timing"].split(", "):
            float(part.split("dur=")[1])


def test_content_location_sorts_the_query(pg):
    r = pg.get("/books?title=eq.x&id=eq.1")
    assert r.headers["content-location"] == "/books?id=eq.1&title=eq.x"


def test_plan_media_type_needs_the_setting(pg):
    accept = {"Accept": "application/vnd.pgrst.plan+json; options=analyze|buffers"}
    r = pg.get("/books?id=eq.1", headers=accept)
    assert_pgrst_error(r.status_code, r.content, 406, "PGRST107")
    with pg.reload_with(plan_enabled="on"):
        r = pg.get("/books?id=eq.1", headers=accept)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == (
            'application/vnd.pgrst.plan+json; for="application/json"; '
            "options=analyze|buffers; charset=utf-8")
        plan = r.json()[0]
        assert "Plan" in plan and "Execution Time" in plan, plan
        r = pg.get("/books?id=eq.1", headers={"Accept": "application/vnd.pgrst.plan"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/vnd.pgrst.plan+text;")
        assert "Scan" in r.text
