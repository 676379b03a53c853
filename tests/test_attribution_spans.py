"""Ground-truth attribution spans (`cards.attribution`) of the built-in generators, on hand-worked records."""

from __future__ import annotations

import random

import pyarrow.parquet as pq
import pytest

from cards import attribution
from cards.errors import IntegrityError
from cards.generator import generate
from multmath import attribution as multmath_spans
from multmath import problem
from multmath.generator import GENERATOR as MULTMATH, Options as MultmathOptions


def multmath_record(a: int, b: int, format: str = "icot", cot: str = "explicit") -> dict:
    prompt, chain, answer = problem(a, b).parts(format, cot)
    return {"digits_a": len(str(a)), "digits_b": len(str(b)), "a": str(a), "b": str(b), "prompt": prompt,
            "cot": chain, "answer": answer, "text": f"{a}*{b}"}


def spans_of(targets: list[dict]) -> dict[str, tuple]:
    """label -> ((answer start, end), [(source start, end), ...])"""
    return {t["label"]: ((t["answer"]["start"], t["answer"]["end"]),
                         [(s["start"], s["end"]) for s in t["sources"]]) for t in targets}


# --- multmath ---------------------------------------------------------------------------------------


def test_multmath_2x2_icot_by_hand():
    record = multmath_record(12, 34)  # 12 * 34 = 408: prompt `2 1 * 4 3 ||`, answer ` #### 8 0 4 0`
    prompt, _, answer = MULTMATH.view.pieces(record)
    assert (prompt, answer) == ("2 1 * 4 3 ||", " #### 8 0 4 0")
    a0, a1, b0, b1 = (0, 1), (2, 3), (6, 7), (8, 9)
    assert spans_of(multmath_spans.targets(record, "icot")) == {
        "c_0": ((6, 7), [a0, b0]),
        "c_1": ((8, 9), [a0, a1, b0, b1]),
        "c_2": ((10, 11), [a0, a1, b0, b1]),
        "c_3": ((12, 13), [a0, a1, b0, b1]),
    }


def test_multmath_3x2_plain_by_hand():
    record = multmath_record(123, 45, "plain", "none")  # 123 * 45 = 5535: prompt `123 * 45 ||`, answer ` #### 5535`
    prompt, _, answer = MULTMATH.view.pieces(record)
    assert (prompt, answer) == ("123 * 45 ||", " #### 5535")
    a0, a1, a2, b0, b1 = (2, 3), (1, 2), (0, 1), (7, 8), (6, 7)
    assert spans_of(multmath_spans.targets(record, "plain")) == {  # c_4 = 0 is not written
        "c_0": ((9, 10), [a0, b0]),
        "c_1": ((8, 9), [a0, a1, b0, b1]),
        "c_2": ((7, 8), [a0, a1, a2, b0, b1]),
        "c_3": ((6, 7), [a0, a1, a2, b0, b1]),
    }


@pytest.mark.parametrize("format", ["icot", "plain"])
def test_multmath_digits_outside_the_sources_never_change_the_target(format):
    """The claim itself: changing any digit a_i or b_j that is not a source of c_k leaves c_k as it was."""
    rng = random.Random(0)
    for _ in range(30):
        n, m = rng.randint(2, 5), rng.randint(2, 5)
        a, b = rng.randrange(10 ** (n - 1), 10 ** n), rng.randrange(10 ** (m - 1), 10 ** m)
        record = multmath_record(a, b, format)
        prompt, _, answer = MULTMATH.view.pieces(record)
        for t in multmath_spans.targets(record, format):
            k = int(t["label"][2:])
            sources = {(s["start"], s["end"]) for s in t["sources"]}
            digit = answer[t["answer"]["start"]:t["answer"]["end"]]
            assert digit == str(a * b // 10 ** k % 10)
            for at in range(len(prompt)):
                if prompt[at].isdigit() and (at, at + 1) not in sources:
                    changed = prompt[:at] + str((int(prompt[at]) + rng.randint(1, 8)) % 10) + prompt[at + 1:]
                    x, y = _operands(changed, format)
                    assert x * y // 10 ** k % 10 == int(digit), (record["text"], t["label"], changed)


def _operands(prompt: str, format: str) -> tuple[int, int]:
    a, b = prompt.rstrip(" |").split(" * ")
    return (int(a.replace(" ", "")[::-1]), int(b.replace(" ", "")[::-1])) if format == "icot" else (int(a), int(b))


def test_multmath_spans_that_miss_their_digits_are_refused():
    record = multmath_record(12, 34)
    multmath_spans.targets(record, "icot")
    record["a"] = "13"  # the text says 12
    with pytest.raises(IntegrityError, match="do not read the digits"):
        multmath_spans.targets(record, "icot")


def test_multmath_corpus_records_carry_checked_spans(tmp_path):
    generate("multmath", tmp_path / "m", levels=[(3, 2)], sizes={"train": 40, "validation": 5, "test": 5},
             format="plain")
    for shard in (tmp_path / "m" / "data" / "3x2").glob("*.parquet"):
        for record in pq.read_table(shard).to_pylist():
            prompt, _, answer = MULTMATH.view.pieces(record)
            attribution.check(record["attribution"], prompt, answer)
            assert [t["label"] for t in record["attribution"]] == [f"c_{k}" for k in range(len(record["product"]))]
            assert "".join(answer[t["answer"]["start"]] for t in record["attribution"]) == record["product"][::-1]
    assert "attribution spans" in (tmp_path / "m" / "README.md").read_text()
    assert MULTMATH.make_item(MultmathOptions(), (2, 2), 0).record["attribution"]


# --- tinysql ----------------------------------------------------------------------------------------


def tinysql_targets(english: str, create: str, sql: str, tables: dict, columns: dict) -> tuple[list, str]:
    from tinysql import attribution as tinysql_spans
    from tinysql.generate import INSTRUCTION

    prompt = INSTRUCTION.format(english=english, context=create)
    spec = {"tables": [{"table": t, "alias": None} for t in tables], "nested": None}
    found = tinysql_spans.targets(prompt, sql, english, create, spec, {"tables": tables, "columns": columns})
    return [(t["label"], (t["answer"]["start"], t["answer"]["end"]), [(s["start"], s["end"]) for s in t["sources"]])
            for t in found], prompt


def test_tinysql_level1_with_synonyms_by_hand():
    found, prompt = tinysql_targets(
        "Return is_received from the table supply orders.",
        "CREATE TABLE purchase_orders ( id INTEGER, is_received BOOLEAN )",
        "SELECT is_received FROM purchase_orders",
        {"purchase_orders": "supply orders"},
        {"purchase_orders.id": "identifier", "purchase_orders.is_received": "is_received"})
    # prompt: `### Instruction: ` is 17 characters, the request 48, ` ### Context: ` 14, `CREATE TABLE ` 13
    assert found == [
        ("column:purchase_orders.is_received", (7, 18), [(24, 35), (122, 133)]),
        ("table:purchase_orders", (24, 39), [(51, 64), (92, 107)]),  # the synonym, then the CREATE name
    ]
    assert [prompt[s:e] for s, e in found[1][2]] == ["supply orders", "purchase_orders"]


def test_tinysql_level3_aggregate_by_hand():
    found, prompt = tinysql_targets(
        "Extract the sum of fixture count of league years.",
        "CREATE TABLE seasons ( id INTEGER, games_scheduled SMALLINT )",
        "SELECT SUM(games_scheduled) AS SUM_games_scheduled FROM seasons",
        {"seasons": "league years"}, {"seasons.id": "id", "seasons.games_scheduled": "fixture count"})
    assert found == [  # the alias SUM_games_scheduled is no target: it is made, not copied
        ("keyword:SUM", (7, 10), [(29, 32)]),
        ("column:seasons.games_scheduled", (11, 26), [(36, 49), (115, 130)]),
        ("table:seasons", (56, 63), [(53, 65), (93, 100)]),
    ]
    assert [prompt[s:e] for _, _, spans in found for s, e in spans] == [
        "sum", "fixture count", "games_scheduled", "league years", "seasons"]


def test_tinysql_level4_where_values_and_direction_by_hand():
    found, prompt = tinysql_targets(
        "Show how many award_amount entries there are in scholarships, where deadline is greater than "
        "'2019-04-24' or award_amount is between 5 and 9, sorted by award_amount descending.",
        "CREATE TABLE scholarships ( award_amount DECIMAL(12,2), application_deadline DATE )",
        "SELECT COUNT(award_amount) AS COUNT_award_amount FROM scholarships WHERE application_deadline > "
        "'2019-04-24' OR award_amount BETWEEN 5 AND 9 ORDER BY COUNT_award_amount DESC",
        {"scholarships": "scholarships"},
        {"scholarships.award_amount": "award_amount", "scholarships.application_deadline": "deadline"})
    award = [(31, 43), (126, 138), (169, 181), (235, 247)]  # three mentions and the definition
    assert found == [
        ("keyword:COUNT", (7, 12), [(22, 30)]),  # `how many`
        ("column:scholarships.award_amount", (13, 25), award),
        ("table:scholarships", (54, 66), [(65, 77), (220, 232)]),
        ("column:scholarships.application_deadline", (73, 93), [(85, 93), (263, 283)]),
        ("value:'2019-04-24'", (96, 108), [(110, 122)]),
        ("column:scholarships.award_amount", (112, 124), award),
        ("value:5", (133, 134), [(150, 151)]),
        ("value:9", (139, 140), [(156, 157)]),
        ("keyword:DESC", (169, 173), [(182, 192)]),
    ]
    assert prompt[263:283] == "application_deadline" and prompt[85:93] == "deadline"
    assert prompt[150:151] == "5" and prompt[182:192] == "descending"


def test_tinysql_longest_mention_wins():
    """`patient number` mentions the column; COUNT's evidence word `number` is only the free one."""
    found, prompt = tinysql_targets(
        "Show the number of patient number values in claims.",
        "CREATE TABLE claims ( patient_id INTEGER )",
        "SELECT COUNT(patient_id) AS COUNT_patient_id FROM claims",
        {"claims": "claims"}, {"claims.patient_id": "patient number"})
    assert [(label, [prompt[s:e] for s, e in spans]) for label, _, spans in found] == [
        ("keyword:COUNT", ["number"]), ("column:claims.patient_id", ["patient number", "patient_id"]),
        ("table:claims", ["claims", "claims"])]
    assert found[0][2] == [(26, 32)]  # 17 + len("Show the "): the first `number`, not the one in `patient number`


@pytest.mark.parametrize("options", [{"synonyms": True}, {"format": "chat"}, {"compat": "original"}])
def test_tinysql_corpus_names_all_point_at_their_sources(tmp_path, options):
    from tinysql.generator import GENERATOR as TINYSQL
    from tinysql.attribution import pieces

    reports = generate("tinysql", tmp_path / "t", levels=[1, 4, 5], num_examples=40, **options)
    assert not any("attribution" in reason for r in reports for reason in r.rejected)
    names = 0
    for shard in (tmp_path / "t" / "data").glob("*/*.parquet"):
        for record in pq.read_table(shard).to_pylist():
            prompt, answer = pieces(record, options.get("format", "alpaca"))
            attribution.check(record["attribution"], prompt, answer)
            for t in record["attribution"]:
                kind, _, name = t["label"].partition(":")
                if kind in ("table", "column"):
                    names += 1
                    assert answer[t["answer"]["start"]:t["answer"]["end"]] == name.rsplit(".", 1)[-1]
                    read = [prompt[s["start"]:s["end"]] for s in t["sources"]]
                    assert name.rsplit(".", 1)[-1] in read and len(read) >= 2  # the definition and a mention
    assert names > 100
    assert "attribution spans" in (tmp_path / "t" / "README.md").read_text()
    assert TINYSQL.schema(TINYSQL.Options(**options)).field("attribution").type == attribution.ATTRIBUTION


def test_tinysql_spans_that_fail_their_check_reject_the_record():
    from cards.corpus import Candidate
    from tinysql import attribution as tinysql_spans

    record = {"prompt": "### Instruction: something else", "completion": "SELECT a FROM t", "english_prompt": "Show a.",
              "create_statement": "CREATE TABLE t ( a INTEGER )",
              "clauses": '{"tables": [], "nested": null, "names": {"tables": {"t": "t"}, "columns": {"t.a": "a"}}}'}
    assert tinysql_spans.with_targets(Candidate(record), "alpaca").rejected == tinysql_spans.REJECTED


# --- mcq ---------------------------------------------------------------------------------------------


def test_mcq_context_record_by_hand():
    from mcq import attribution as mcq_spans
    from mcq.generator import GENERATOR as MCQ
    from mcq.labels import render_prompt

    question = "The cup is red. The hat is blue. What colour is the hat?"
    facts = {"relation": "colour", "pairs": [["cup", "red"], ["hat", "blue"]], "query": "hat"}
    record = {"question": question, "choices": ["red", "blue"], "labels": ["A", "B"], "answer": 1,
              "answer_label": "B", "label_style": "dot", "source": "context",
              "prompt": render_prompt(question, ["red", "blue"], ["A", "B"], "dot")}
    prompt, _, answer = MCQ.view.pieces(record)
    assert (prompt, answer) == (question + "\nA. red\nB. blue\nAnswer:", " B")
    # the binding sentence 16..32, `hat` in the question 33 + 19, option B's line starts at 57 + len("A. red\n")
    assert spans_of(mcq_spans.targets(record, facts)) == {
        "answer_label": ((1, 2), [(16, 32), (52, 55), (64, 65), (67, 71)])}


def test_mcq_comparison_and_arithmetic_sources_by_hand():
    from mcq import attribution as mcq_spans
    from mcq.labels import render_prompt

    def record(question, choices, labels, gold, style, source):
        return {"question": question, "choices": choices, "labels": labels, "answer": gold, "source": source,
                "answer_label": labels[gold], "label_style": style,
                "prompt": render_prompt(question, choices, labels, style)}

    largest = record("Which number is the largest?", ["12", "40", "7"], ["1", "2", "3"], 1, "paren", "arithmetic")
    # `(1) 12` at 29, `(2) 40` at 36, `(3) 7` at 43: every option's text is a source, and `largest`
    assert spans_of(mcq_spans.targets(largest, {"kind": "largest", "numbers": [7, 12, 40]})) == {
        "answer_label": ((1, 2), [(20, 27), (33, 35), (37, 38), (40, 42), (47, 48)])}
    total = record("What is 25 + 7?", ["32", "33"], ["a", "b"], 0, "colon", "arithmetic")
    assert spans_of(mcq_spans.targets(total, {"kind": "sum", "a": 25, "b": 7})) == {  # `a: 32` at 16
        "answer_label": ((1, 2), [(8, 10), (13, 14), (16, 17), (19, 21)])}


def test_mcq_corpus_records_carry_checked_spans(tmp_path):
    from mcq.generator import GENERATOR as MCQ

    generate("mcq", tmp_path / "q", levels=[4], num_examples=60, counterfactual="swap")
    for shard in (tmp_path / "q" / "data" / "level4").glob("*.parquet"):
        for record in pq.read_table(shard).to_pylist():
            prompt, _, answer = MCQ.view.pieces(record)
            attribution.check(record["attribution"], prompt, answer)
            (target,) = record["attribution"]
            read = [prompt[s["start"]:s["end"]] for s in target["sources"]]
            assert answer[target["answer"]["start"]:] == record["answer_label"]
            assert record["answer_label"] in read and record["choices"][record["answer"]] in read
    assert "attribution spans" in (tmp_path / "q" / "README.md").read_text()


# --- --tokenizer: token spans -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    """A word-level tokenizer with one token per digit and a byte-level BPE, both trained here on a few texts."""
    from train.tokenizer import save_tokenizer, train_tokenizer

    folder = tmp_path_factory.mktemp("tokenizers")
    texts = ["2 1 * 4 3 || #### 8 0 4 0", "SELECT a FROM t WHERE b > 3", "What colour is the hat?\nA. red\nAnswer:"] * 3
    save_tokenizer(train_tokenizer(texts, digits=True, vocab_size=200), folder / "digits")
    save_tokenizer(train_tokenizer(texts, digits=False, vocab_size=300), folder / "bpe")
    return folder


def test_token_span_is_the_tokens_overlapping_the_characters():
    offsets = [(0, 0), (0, 3), (3, 4), (4, 9), (9, 10)]  # a special token first: it never overlaps
    assert attribution.token_span(offsets, {"start": 0, "end": 3}) == (1, 2)
    assert attribution.token_span(offsets, {"start": 2, "end": 5}) == (1, 4)
    assert attribution.token_span(offsets, {"start": 9, "end": 10}) == (4, 5)
    with pytest.raises(IntegrityError, match="no token covers"):
        attribution.token_span(offsets, {"start": 10, "end": 12})
    target = attribution.target("x", (0, 1), [(4, 6), (0, 3)])
    assert attribution.token_targets([target], offsets, [(0, 1)]) == [attribution.target("x", (0, 1), [(3, 4), (1, 2)])]


def test_multmath_token_spans_by_hand(tokenizers):
    """12 * 34 with one token per digit: prompt `2 1 * 4 3 ||` is tokens 2,1,*,4,3,||; the answer ` #### 8 0 4 0`
    is `####` (the prefix, apart) then 8,0,4,0."""
    from cards.corpus import Candidate

    record = multmath_record(12, 34)
    record["attribution"] = multmath_spans.targets(record, "icot")
    make = attribution.WithTokenSpans(lambda index: Candidate(dict(record)), MULTMATH.view, str(tokenizers / "digits"))
    a0, a1, b0, b1 = (0, 1), (1, 2), (3, 4), (4, 5)
    assert spans_of(make(0).record["attribution_tokens"]) == {
        "c_0": ((1, 2), [a0, b0]), "c_1": ((2, 3), [a0, a1, b0, b1]),
        "c_2": ((3, 4), [a0, a1, b0, b1]), "c_3": ((4, 5), [a0, a1, b0, b1])}


@pytest.mark.parametrize("name, levels, sizes, kind", [
    ("multmath", [(2, 3)], {"train": 20, "validation": 2, "test": 2}, "digits"),
    ("multmath", [(2, 3)], {"train": 20, "validation": 2, "test": 2}, "bpe"),
    ("tinysql", [1, 4], {"train": 16, "validation": 2, "test": 2}, "digits"),
    ("tinysql", [1, 4], {"train": 16, "validation": 2, "test": 2}, "bpe"),
    ("mcq", [4], {"train": 30, "validation": 4, "test": 4}, "digits"),  # this BPE splits most labels: mcq drops them
])
def test_every_generator_gets_token_spans_that_cover_the_same_text(tmp_path, tokenizers, name, levels, sizes, kind):
    from cards.card import read_corpus_metadata
    from cards.generator import get
    from train.attribution import answer_offsets, with_offsets
    from train.tokenizer import load_tokenizer

    tokenizer_dir = str(tokenizers / kind)
    generate(name, tmp_path / "c", levels=levels, sizes=sizes, tokenizer=tokenizer_dir)
    view, tokenizer = get(name).view, load_tokenizer(tokenizer_dir)
    records = [r for shard in sorted((tmp_path / "c" / "data").glob("*/*.parquet")) for r in pq.read_table(shard).to_pylist()]
    assert len(records) == sum(sizes.values()) * len(levels)
    for record in records:
        prompt, _, answer = view.pieces(record)
        _, in_prompt = with_offsets(tokenizer, prompt, view.prompt_special_tokens)
        _, in_answer = answer_offsets(tokenizer, view, answer)
        chars, tokens = record["attribution"], record["attribution_tokens"]
        assert [t["label"] for t in tokens] == [t["label"] for t in chars]
        for c, t in zip(chars, tokens):
            for span, token, offsets in [(c["answer"], t["answer"], in_answer)] + [
                    (s, u, in_prompt) for s, u in zip(c["sources"], t["sources"], strict=True)]:
                covered = offsets[token["start"]:token["end"]]
                assert covered and covered[0][0] <= span["start"] < covered[0][1] and covered[-1][0] < span["end"] <= covered[-1][1]
    card = (tmp_path / "c" / "README.md").read_text()
    assert "attribution_tokens" in card and tokenizer_dir in card
    assert read_corpus_metadata(tmp_path / "c").options["tokenizer"] == tokenizer_dir


def test_tokenizer_option_from_the_command_line_and_its_refusals(tmp_path, tokenizers, capsys):
    from multmath.cli import main as multmath_main
    from tinysql.cli import main as tinysql_main

    args = ["--digits", "2x2", "-n", "10", "--num-valid", "2", "--num-test", "2"]
    assert multmath_main([*args, "--tokenizer", str(tokenizers / "digits"), "--out", str(tmp_path / "m")]) == 0
    (shard,) = (tmp_path / "m" / "data" / "2x2").glob("train-*.parquet")
    assert "attribution_tokens" in pq.read_schema(shard).names
    assert multmath_main([*args, "--tokenizer", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert "--tokenizer: cannot load" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert tinysql_main(["-n", "10", "--format", "chat", "--tokenizer", str(tokenizers / "bpe"),
                         "--out", str(tmp_path / "t")]) == 2
    assert "no prompt, completion column" in capsys.readouterr().err


def test_fast_arrow_table_equals_from_pylist():
    """The corpus core writes the span columns through `cards.attribution.table`: the same table (so the same
    bytes) as `pa.Table.from_pylist`, nulls and empty target lists included."""
    import pyarrow as pa

    schema = pa.schema([("id", pa.string()), attribution.FIELD, attribution.TOKENS_FIELD])
    records = [{"id": "a", "attribution": [attribution.target("c_0", (0, 1), [(2, 3), (4, 6)])],
                "attribution_tokens": [attribution.target("c_0", (0, 1), [(1, 2)])]},
               {"id": "b", "attribution": [], "attribution_tokens": None},
               {"id": "c", "attribution": [attribution.target("x", (5, 9), []), attribution.target("y", (1, 2), [(0, 9)])],
                "attribution_tokens": []}]
    assert attribution.table(records, schema).equals(pa.Table.from_pylist(records, schema=schema))
    assert attribution.table([], schema).equals(pa.Table.from_pylist([], schema=schema))
