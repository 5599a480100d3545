"""The search filter and order_by grammar: valid inputs and their ASTs, malformed
inputs and the exact errors (position and token) they raise."""

from __future__ import annotations

import pytest

from flowml.exceptions import InvalidParameter
from flowml.tracking.search import (
    EXPERIMENT_SEARCH,
    And,
    Comparison,
    Or,
    OrderBy,
    parse_filter,
    parse_order_by,
)
from flowml.tracking.search_lexer import TokenType, tokenize
from flowml.tracking.search_spec import Attribute, EntitySpec
from flowml.tracking.store.sql_filter import like_to_glob


def M(key: str, op: str, value: float) -> Comparison:
    return Comparison("metric", key, op, value)


def P(key: str, op: str, value: object) -> Comparison:
    return Comparison("param", key, op, value)


def T(key: str, op: str, value: object) -> Comparison:
    return Comparison("tag", key, op, value)


def A(key: str, op: str, value: object) -> Comparison:
    return Comparison("attribute", key, op, value)


VALID = [
    # MLflow's grammar
    ("metrics.acc > 0.9", M("acc", ">", 0.9)),
    ("metric.acc >= 1", M("acc", ">=", 1.0)),
    ("metrics.acc != -1.5e-3", M("acc", "!=", -0.0015)),
    ("metrics.acc < .5", M("acc", "<", 0.5)),
    ("metrics.acc <= +2", M("acc", "<=", 2.0)),
    ("metrics.acc = 1E3", M("acc", "=", 1000.0)),
    ("params.lr = '0.01'", P("lr", "=", "0.01")),
    ('param.lr = "0.01"', P("lr", "=", "0.01")),
    ("parameters.lr != '0.1'", P("lr", "!=", "0.1")),
    ("tags.x LIKE 'a%'", T("x", "LIKE", "a%")),
    ("tag.x ilike '%B_'", T("x", "ILIKE", "%B_")),
    ("tags.mlflow.runName = 'r'", T("mlflow.runName", "=", "r")),
    ("tags.val-loss/x:y = 'r'", T("val-loss/x:y", "=", "r")),
    ("metrics.`my metric` > 0", M("my metric", ">", 0.0)),
    ("tags.\"a b\" = 'v'", T("a b", "=", "v")),
    ("tags.`it``s` = 'it''s'", T("it`s", "=", "it's")),
    ("params.`a%b` = '100%'", P("a%b", "=", "100%")),
    ("tags.x = ''", T("x", "=", "")),
    ("tags.x = 'ünï cødé'", T("x", "=", "ünï cødé")),
    ("tags.x IS NULL", T("x", "IS NULL", None)),
    ("params.x is not null", P("x", "IS NOT NULL", None)),
    ("tags.x IN ('a', \"b\")", T("x", "IN", ("a", "b"))),
    ("params.x not in ('a')", P("x", "NOT IN", ("a",))),
    # attributes: prefixed, bare, aliased, quoted
    ("attributes.status = 'FINISHED'", A("status", "=", "FINISHED")),
    ("attribute.run_id = 'abc'", A("run_id", "=", "abc")),
    ("attr.user_id != 'bob'", A("user_id", "!=", "bob")),
    ("run.artifact_uri LIKE 's3://%'", A("artifact_uri", "LIKE", "s3://%")),
    ("status = 'RUNNING'", A("status", "=", "RUNNING")),
    ("run_name ILIKE 'train%'", A("run_name", "ILIKE", "train%")),
    ("`Run name` = 'x'", A("run_name", "=", "x")),
    ("\"run name\" = 'x'", A("run_name", "=", "x")),
    ("attributes.`run name` = 'x'", A("run_name", "=", "x")),
    ("created > 5", A("start_time", ">", 5)),
    ("start_time >= 1700000000000", A("start_time", ">=", 1700000000000)),
    ("attributes.end_time < 1.5e12", A("end_time", "<", 1.5e12)),
    ("run_id IN ('a', 'b', 'c')", A("run_id", "IN", ("a", "b", "c"))),
    ("status NOT IN ('FAILED', 'KILLED')", A("status", "NOT IN", ("FAILED", "KILLED"))),
    # AND / OR / parentheses; AND binds tighter; keywords in any case
    (
        "metrics.a > 1 and params.b = 'x'",
        And((M("a", ">", 1.0), P("b", "=", "x"))),
    ),
    (
        "metrics.a > 1 AND params.b = 'x' And tags.c = 'y'",
        And((M("a", ">", 1.0), P("b", "=", "x"), T("c", "=", "y"))),
    ),
    (
        "metrics.a > 1 or params.b = 'x' and tags.c = 'y'",
        Or((M("a", ">", 1.0), And((P("b", "=", "x"), T("c", "=", "y"))))),
    ),
    (
        "(metrics.a > 1 OR params.b = 'x') and tags.c = 'y'",
        And((Or((M("a", ">", 1.0), P("b", "=", "x"))), T("c", "=", "y"))),
    ),
    (
        "metrics.a > 1 and (params.b = 'x' and tags.c = 'y')",
        And((M("a", ">", 1.0), P("b", "=", "x"), T("c", "=", "y"))),
    ),
    ("((metrics.a>1))", M("a", ">", 1.0)),
    (
        "metrics.a>1 or (tags.c='y' or (tags.d='z' and tags.e='w'))",
        Or((M("a", ">", 1.0), T("c", "=", "y"), And((T("d", "=", "z"), T("e", "=", "w"))))),
    ),
    ("  metrics.a\t>\n1  ", M("a", ">", 1.0)),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[v[0] for v in VALID])
def test_valid_filters_parse_to_their_ast(text: str, expected: object) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize("text", [None, "", "   \n"])
def test_empty_filter_means_no_filter(text: str | None) -> None:
    assert parse_filter(text) is None


MALFORMED = [
    ("metrics.acc >> 1", "unexpected token '>' at position 14; expected a value"),
    ("metrics.acc > ", "unexpected end of input at position 15; expected a value"),
    ("metrics.acc", "unexpected end of input at position 12; expected a comparison operator"),
    ("metrics.acc == 1", "unexpected token '=' at position 14; expected a value"),
    ("metrics.acc <> 1", "unexpected token '>' at position 14; expected a value"),
    ("metrics.acc ~ 1", "unexpected character '~' at position 13"),
    ("params.lr = abc", "unexpected token 'abc' at position 13; expected a value (quote string"),
    (
        "params.lr = 0.01",
        "params.lr is compared with quoted strings, got the number '0.01' at position 13",
    ),
    (
        "metrics.acc = '1'",
        "metrics.acc is compared with numbers, got the string '1' at position 15",
    ),
    (
        "start_time > '1'",
        "attribute start_time is compared with numbers, got the string '1' at position 14",
    ),
    (
        "status = 1",
        "attribute status is compared with quoted strings, got the number '1' at position 10",
    ),
    (
        "metrics.acc LIKE '1%'",
        "operator 'LIKE' at position 13 is not supported for metrics; use "
        "one of: =, !=, <, <=, >, >=",
    ),
    ("metrics.acc IN (1, 2)", "operator 'IN' at position 13 is not supported for metrics"),
    ("metrics.acc IS NULL", "operator 'IS NULL' at position 13 is not supported for metrics"),
    (
        "params.lr > '1'",
        "operator '>' at position 11 is not supported for params; use one of: "
        "=, !=, LIKE, ILIKE, IN, NOT IN, IS NULL, IS NOT NULL",
    ),
    (
        "start_time LIKE 1",
        "operator 'LIKE' at position 12 is not supported for attribute start_time",
    ),
    ("status < 'x'", "operator '<' at position 8 is not supported for attribute status"),
    ("status IS NULL", "operator 'IS NULL' at position 8 is not supported for attribute status"),
    (
        "foo.x = 'a'",
        "unknown identifier type 'foo' at position 1; expected one of: attributes, "
        "metrics, params, tags",
    ),
    ("datasets.name = 'a'", "unknown identifier type 'datasets' at position 1"),
    (
        "colour = 'red'",
        "unknown attribute 'colour' at position 1; expected one of: artifact_uri, "
        "end_time, run_id, run_name, start_time, status, user_id",
    ),
    ("attributes.colour = 'red'", "unknown attribute 'colour' at position 1"),
    ("`my metric` > 1", "unknown attribute 'my metric' at position 1"),
    ("metrics. = 1", "unexpected token '=' at position 10; expected a key right after 'metrics.'"),
    ("metrics. `a` = 1", "unexpected token '`a`' at position 10; expected a key right after"),
    ("metrics.`` = 1", "empty key at position 9"),
    ("tags.x = 'abc", "unterminated quoted text starting at position 10"),
    ("tags.`x = 'abc'", "unterminated quoted text starting at position 6"),
    (
        "tags.x = 'a' and",
        "unexpected end of input at position 17; expected an identifier such as metrics.<key>",
    ),
    ("and tags.x = 'a'", "unexpected token 'and' at position 1; expected an identifier"),
    (
        "tags.x = 'a' tags.y = 'b'",
        "unexpected token 'tags.y' at position 14; expected AND, OR or end of filter",
    ),
    (
        "tags.x = 'a' or or tags.y = 'b'",
        "unexpected token 'or' at position 17; expected an identifier",
    ),
    ("(tags.x = 'a'", "unexpected end of input at position 14; expected AND, OR or ')'"),
    ("tags.x = 'a')", "unexpected token ')' at position 13; expected AND, OR or end of filter"),
    ("()", "unexpected token ')' at position 2; expected an identifier"),
    ("tags.x NOT LIKE 'a'", "unexpected token 'LIKE' at position 12; expected IN after NOT"),
    ("tags.x IS 'a'", "unexpected token ''a'' at position 11; expected NULL or NOT NULL"),
    ("tags.x IS NOT 'a'", "unexpected token ''a'' at position 15; expected NULL"),
    ("tags.x IN 'a'", "unexpected token ''a'' at position 11; expected '(' starting a list"),
    ("tags.x IN ()", "unexpected token ')' at position 12; expected a value"),
    ("tags.x IN ('a' 'b')", "unexpected token ''b'' at position 16; expected ',' or ')'"),
    ("tags.x IN ('a',)", "unexpected token ')' at position 16; expected a value"),
    (
        "run_id IN ('a', 1)",
        "attribute run_id is compared with quoted strings, got the number '1' at position 17",
    ),
    ("tags.x LIKE 'a\\'", "pattern 'a\\' at position 13 ends with the escape character"),
    ("tags.x = 'a'; drop table runs", "unexpected character ';' at position 13"),
    ("metrics.acc > 1 - 2", "unexpected character '-' at position 17"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_filters_name_position_and_token(text: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_filter(text)
    assert str(caught.value).startswith(f"Invalid filter '{text}': ")
    assert message in str(caught.value)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


def test_a_filter_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidParameter, match="must be a string"):
        parse_filter(42)  # type: ignore[arg-type]


def test_like_pattern_may_end_with_an_escaped_backslash() -> None:
    assert parse_filter("tags.x LIKE 'a\\\\'") == T("x", "LIKE", "a\\\\")


def test_experiment_spec_accepts_its_attributes_and_tags_only() -> None:
    parsed = parse_filter(
        "name LIKE 'exp%' and (experiment_id IN ('1', '2') or tags.team = 'a') "
        "and creation_time > 5 and attributes.last_update_time <= 7",
        EXPERIMENT_SEARCH,
    )
    assert parsed == And(
        (
            A("name", "LIKE", "exp%"),
            Or((A("experiment_id", "IN", ("1", "2")), T("team", "=", "a"))),
            A("creation_time", ">", 5),
            A("last_update_time", "<=", 7),
        )
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "metrics.acc > 1",
            "unknown identifier type 'metrics' at position 1; expected one of: attributes, tags",
        ),
        ("params.x = 'a'", "unknown identifier type 'params'"),
        ("status = 'a'", "unknown attribute 'status' at position 1"),
        ("experiment_id = 'abc'", "experiment_id must be an integer id, got 'abc' at position 17"),
        ("experiment_id = 1", "compared with quoted strings, got the number '1'"),
        (
            "experiment_id LIKE '1%'",
            "operator 'LIKE' at position 15 is not supported for "
            "attribute experiment_id; use one of: =, !=, IN, NOT IN",
        ),
        ("", None),
    ],
)
def test_experiment_spec_errors(text: str, message: str | None) -> None:
    if message is None:
        assert parse_filter(text, EXPERIMENT_SEARCH) is None
        return
    with pytest.raises(InvalidParameter) as caught:
        parse_filter(text, EXPERIMENT_SEARCH)
    assert message in str(caught.value)


def test_a_custom_spec_serves_another_entity() -> None:
    versions = EntitySpec(
        name="model versions",
        prefixes={"tags": "tag", "attributes": "attribute"},
        attributes=(
            Attribute("name", list_ok=True),
            Attribute("version", integer_id=True),
            Attribute("run_id", list_ok=True),
            Attribute("source", aliases=("source_path",)),
        ),
        kind_operators={"tag": frozenset({"=", "!=", "LIKE", "ILIKE"})},
        order_kinds=frozenset({"attribute"}),
    )
    assert parse_filter("name = 'm' and source_path LIKE 's3://%'", versions) == And(
        (A("name", "=", "m"), A("source", "LIKE", "s3://%"))
    )
    with pytest.raises(InvalidParameter, match="operator 'IS NULL' at position 8"):
        parse_filter("tags.x IS NULL", versions)
    with pytest.raises(InvalidParameter, match="model versions cannot be ordered by tags"):
        parse_order_by(["tags.x"], versions)


ORDER_VALID = [
    (["metrics.acc DESC"], (OrderBy("metric", "acc", False),)),
    (["params.lr"], (OrderBy("param", "lr", True),)),
    (["attributes.start_time ASC"], (OrderBy("attribute", "start_time", True),)),
    (["tags.`x y`"], (OrderBy("tag", "x y", True),)),
    (['tags."x y" desc'], (OrderBy("tag", "x y", False),)),
    (["created"], (OrderBy("attribute", "start_time", True),)),
    (
        ["run_name asc", "status Desc"],
        (OrderBy("attribute", "run_name", True), OrderBy("attribute", "status", False)),
    ),
    (["  metrics.m   desc  "], (OrderBy("metric", "m", False),)),
    ([], ()),
    (None, ()),
]


@pytest.mark.parametrize(("items", "expected"), ORDER_VALID, ids=[str(v[0]) for v in ORDER_VALID])
def test_valid_order_by(items: list[str] | None, expected: tuple[OrderBy, ...]) -> None:
    assert parse_order_by(items) == expected


ORDER_MALFORMED = [
    (
        ["metrics.acc DESCC"],
        "Invalid order_by 'metrics.acc DESCC': unexpected token 'DESCC' at "
        "position 13; expected ASC, DESC or end of order_by",
    ),
    (["metrics.acc DESC ASC"], "unexpected token 'ASC' at position 18"),
    ([""], "Invalid order_by '': unexpected end of input at position 1; expected an identifier"),
    (["foo.bar"], "unknown identifier type 'foo' at position 1"),
    (["colour"], "unknown attribute 'colour' at position 1"),
    (["metrics.acc", "metric.acc DESC"], "metrics.acc appears more than once"),
    (["start_time", "created desc"], "attributes.start_time appears more than once"),
    (["metrics.acc > 1"], "unexpected token '>' at position 13; expected ASC, DESC"),
    ("metrics.acc", "order_by must be a list of strings, got str"),
    ([1], "order_by items must be strings, got int"),
]


@pytest.mark.parametrize(
    ("items", "message"), ORDER_MALFORMED, ids=[str(m[0]) for m in ORDER_MALFORMED]
)
def test_malformed_order_by(items: object, message: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_order_by(items)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_experiments_order_by_attributes_and_tags_only() -> None:
    assert parse_order_by(["name", "tags.team DESC"], EXPERIMENT_SEARCH) == (
        OrderBy("attribute", "name", True),
        OrderBy("tag", "team", False),
    )
    with pytest.raises(InvalidParameter, match="unknown identifier type 'metrics'"):
        parse_order_by(["metrics.acc"], EXPERIMENT_SEARCH)


def test_tokens_remember_their_source_positions() -> None:
    tokens = tokenize("tags.`a b` IN ('x', -1.5)")
    assert [(t.type, t.value, t.position) for t in tokens] == [
        (TokenType.WORD, "tags.", 1),
        (TokenType.BACKQUOTED, "a b", 6),
        (TokenType.WORD, "IN", 12),
        (TokenType.LPAREN, "(", 15),
        (TokenType.STRING, "x", 16),
        (TokenType.COMMA, ",", 19),
        (TokenType.NUMBER, "-1.5", 21),
        (TokenType.RPAREN, ")", 25),
        (TokenType.END, "", 26),
    ]


@pytest.mark.parametrize(
    ("like", "glob"),
    [
        ("abc", "abc"),
        ("a%", "a*"),
        ("_b_", "?b?"),
        ("a\\%b", "a%b"),
        ("a\\_b", "a_b"),
        ("a\\\\b", "a\\b"),
        ("*?[x]", "[*][?][[]x]"),
        ("a\\*", "a[*]"),
    ],
)
def test_like_patterns_translate_to_equivalent_globs(like: str, glob: str) -> None:
    assert like_to_glob(like) == glob
