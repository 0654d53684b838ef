from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from journeylens.collector.formats._boomerang_codecs import (
    CodecError,
    decode_jsurl,
    decode_restiming,
)
from journeylens.collector.formats.base import MalformedBody, RequestMeta
from journeylens.collector.formats.boomerang import parse
from journeylens.contracts.rum_beacons_v1 import EventKind

META = RequestMeta(app="demo-shop", received_at=datetime(2026, 11, 25, 10, tzinfo=UTC))
PAGE = "https://shop.example.com/checkout"


def qs(**params: str) -> bytes:
    return "&".join(
        f"{k.replace('_dot_', '.')}={quote(v, safe='')}" for k, v in params.items()
    ).encode()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("~(a~1~b~'x)", {"a": 1, "b": "x"}),
        ("~(~1~'two~true~null)", [1, "two", True, None]),
        ("~(~)", []),
        ("~()", {}),
        ("~-2.5", -2.5),
        ("~'a*20b*27c!d", "a b'c$d"),
        ("~'**20ac", "\u20ac"),
        ("~(k*2eey~(~(x~false)))", {"k.ey": [{"x": False}]}),
    ],
)
def test_jsurl_decoding(text: str, value: object) -> None:
    assert decode_jsurl(text) == value


@pytest.mark.parametrize("text", ["", "(a~1)", "~(a~1", "~'x)", "~bogus", "~'a*zz", "~(~1~2"])
def test_jsurl_rejects_bad_syntax(text: str) -> None:
    with pytest.raises(CodecError):
        decode_jsurl(text)


def test_jsurl_depth_is_bounded() -> None:
    with pytest.raises(CodecError):
        decode_jsurl("~(" * 200 + "~1" + ")" * 200)


def test_restiming_trie_decoding() -> None:
    trie = (
        '{"http://abc.com/":{"|":"6,2","js/foo.js":"3a,1","css/":{"foo.css":"2b,2",'
        '"foo.png":"1c,3|1d,a"}},"https://cdn.x/i\\n.png":"*05,5|1z,1b*1a,b,c*7h2"}'
    )
    entries = decode_restiming(trie)
    by_url = sorted(
        (e.url, e.initiator, e.start_ms, e.duration_ms, e.transfer_bytes) for e in entries
    )
    assert by_url == [
        ("http://abc.com/", "6", 0, 2, 0),
        ("http://abc.com/css/foo.css", "2", 11, 2, 0),
        ("http://abc.com/css/foo.png", "1", 12, 3, 0),
        ("http://abc.com/css/foo.png", "1", 13, 10, 0),
        ("http://abc.com/js/foo.js", "3", 10, 1, 0),
        # "*0…" dimensions entry skipped, "\n" XSS placeholder removed; sizes: 10 + 11
        ("https://cdn.x/i.png", "1", 35, 47, 21),
    ]


@pytest.mark.parametrize("size, expected", [("1a", 10), ("1a,,5", 10), ("1a,_,5", 0), ("1a,2", 12)])
def test_restiming_sizes(size: str, expected: int) -> None:
    (entry,) = decode_restiming('{"https://h/x":"31,2*' + size + '"}')
    assert entry.transfer_bytes == expected


@pytest.mark.parametrize("trie", ["[]", "{", '{"a":1}', '{"https://h/":"3z,_"}'])
def test_restiming_rejects_garbage(trie: str) -> None:
    with pytest.raises(CodecError):
        decode_restiming(trie)


def test_page_load_and_bad_restiming_is_rejected_alone() -> None:
    body = qs(
        u=PAGE,
        pid="p1",
        n="1",
        rt_dot_end="1795600790000",
        t_done="900",
        restiming="{nope",
        pt_dot_lcp="800",
    )
    result = parse(body, META)
    (event,) = result.events
    assert event.kind is EventKind.PAGE_VIEW
    assert event.vitals.lcp_ms == 800.0
    assert event.dependencies == []
    assert [r.reason for r in result.rejected] == ["restiming: restiming is not JSON"]


def test_quit_flag_without_value_matters() -> None:
    base = {"u": PAGE, "pid": "p1", "c_dot_cls": "0.3"}
    assert parse(qs(**base), META).events[0].kind is EventKind.PAGE_VIEW
    unload = parse(qs(**base, rt_dot_quit=""), META)
    assert [e.kind for e in unload.events] == [EventKind.WEB_VITAL]
    assert parse(qs(u=PAGE, pid="p1", rt_dot_quit=""), META).events == []  # nothing to carry
    abandoned = parse(qs(**base, rt_dot_quit="", rt_dot_abld=""), META)
    assert [e.kind for e in abandoned.events] == [EventKind.PAGE_VIEW]


def test_get_query_with_question_mark_and_post_with_sb() -> None:
    get = parse(b"?" + qs(u=PAGE, pid="p1", n="2"), META)
    post = parse(qs(u=PAGE, pid="p1", n="2") + b"&sb=1", META)
    assert get.events[0].event_id == post.events[0].event_id


def test_initiators() -> None:
    spa = parse(qs(u=PAGE, pid="p", http_dot_initiator="spa"), META).events[0]
    hard = parse(qs(u=PAGE, pid="p", http_dot_initiator="spa_hard"), META).events[0]
    xhr = parse(
        qs(u="https://api.x/y", pgu=PAGE, pid="p", http_dot_initiator="xhr", t_done="120"), META
    ).events[0]
    assert (spa.kind, hard.kind, xhr.kind) == (
        EventKind.SOFT_NAVIGATION,
        EventKind.PAGE_VIEW,
        EventKind.WEB_VITAL,
    )
    assert xhr.url == PAGE and xhr.dependencies[0].host == "api.x"
    assert parse(qs(u=PAGE, pid="p", early=""), META).events == []
    odd = parse(qs(u=PAGE, pid="p", http_dot_initiator="click"), META)
    assert odd.events == [] and len(odd.rejected) == 1


def test_err_on_error_beacon() -> None:
    err = "~(~(m~'boom~n~3~t~'RangeError~f~(~(l~4~c~2~wo~'*2fa.js~f~'f))))"
    result = parse(qs(u=PAGE, pid="p", http_dot_initiator="error", err=err), META)
    (event,) = result.events
    (error,) = event.errors
    assert (error.message, error.type, error.count) == ("boom", "RangeError", 3)
    assert (error.source, error.line, error.column) == ("https://shop.example.com/a.js", 4, 2)


@pytest.mark.parametrize("body", [b"", b"sb=1", b"pid=x&n=1", b"&&&"])
def test_without_url_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedBody):
        parse(body, META)


def test_restiming_hosts_keep_their_port() -> None:
    trie = '{"http://127.0.0.1:8601/pay":"31,2*","https://cdn.x/app.js":"31,4*"}'
    body = qs(u=PAGE, pid="p1", n="1", rt_dot_end="1795600790000", restiming=trie)
    (event,) = parse(body, META).events
    assert [d.host for d in event.dependencies] == ["127.0.0.1:8601", "cdn.x"]
