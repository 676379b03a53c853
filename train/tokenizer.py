"""Tokenizers: trained on the corpus for models built from scratch, or the base model's own.

From scratch, multmath gets a word-level vocabulary with one token per digit and per symbol
(`*`, `+`, `(`, `)`, `||`, `####`), the other corpora a byte-level BPE trained on their training
text whose words keep identifiers whole (`check_in_date` can be one token, which makes copying
column names a one-token lookup) (for the qwen2 family, with the pre-tokenization that `Qwen2Tokenizer` imposes on reload;
the digit vocabulary cannot survive that, so multmath is refused for qwen2). Both are wrapped as a `PreTrainedTokenizerFast` with `<|endoftext|>` as BOS and EOS and a
separate `<|pad|>`, so `AutoTokenizer.from_pretrained(folder)` loads them from the checkpoint.
`save_tokenizer` writes a tokenizer into a checkpoint under a class name that every transformers
version the project admits loads (transformers 5 writes `TokenizersBackend`, a class 4.x lacks).
A base model's tokenizer that has no pad token gets a new `<|pad|>` (the model's embeddings are
resized to match by `ensure_pad`). A tokenizer without a chat template gets `CHAT_TEMPLATE` when
it trains on a chat corpus (`with_chat_template`), saved with it, so `apply_chat_template` works
after `from_pretrained`.

`token_ids(tokenizer)` is how the trainer tokenises lists of texts: the tokenizer's own batch call,
except for the one-token-per-digit vocabulary, whose pipeline (split at whitespace, then each digit
apart, then a vocabulary look-up) is done in Python: the same ids, about six times faster than the
tokenizers library, which keeps offsets for every token (`bench/bench_train.py --prepare`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable, Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

EOS, PAD, UNK = "<|endoftext|>", "<|pad|>", "<|unk|>"
# the class transformers 5 writes for a tokenizer built on a tokenizers object, unknown to transformers 4,
# and the name of that same class that both load (transformers 5 keeps it as an alias)
V5_ONLY_CLASS, PORTABLE_CLASS = "TokenizersBackend", "PreTrainedTokenizerFast"
# words for the BPE: identifiers (letters, digits, `_`) stay whole, so `check_in_date` can become one
# token (GPT-2's split would cut it at every `_`), each with the space before it
WORDS = r""" ?[A-Za-z0-9_]+| ?[^\sA-Za-z0-9_]+|\s+(?!\S)|\s+"""
# transformers loads every qwen2 folder with Qwen2Tokenizer, which rebuilds the pipeline around the
# saved vocabulary: NFC, this split, then byte-level. A qwen2 model's BPE is trained with the same.
DIGIT_PIPELINE = {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"},
                                                    {"type": "Digits", "individual_digits": True}]}
# that pipeline on ASCII text: runs of non-whitespace (Rust's char::is_whitespace), each digit apart
DIGIT_PIECES = re.compile(r"[0-9]|[^ \t\n\r\x0b\x0c0-9]+")
# a chat in plain text, one turn per message; with add_generation_prompt it ends with the assistant's tag
CHAT_TEMPLATE = ("{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '\\n' }}"
                 "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}")
QWEN2_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def train_tokenizer(texts: Iterable[str], digits: bool, vocab_size: int, qwen2: bool = False) -> PreTrainedTokenizerFast:
    """A tokenizer trained on `texts`: word-level with single digits if `digits`, else byte-level BPE
    (with Qwen2Tokenizer's pipeline if `qwen2`)."""
    if digits:
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                     pre_tokenizers.Digits(individual_digits=True)])
        trainer = trainers.WordLevelTrainer(special_tokens=[EOS, PAD, UNK], show_progress=False)
    else:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(WORDS), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        if qwen2:
            tok.normalizer = normalizers.NFC()
            tok.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, PAD],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    extra = {"unk_token": UNK} if digits else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, pad_token=PAD,
                                   model_max_length=1_000_000, **extra)


def save_tokenizer(tokenizer, folder: str | Path) -> None:
    """`tokenizer.save_pretrained(folder)`, its class written as `PORTABLE_CLASS` where transformers 5 wrote
    `V5_ONLY_CLASS`, so transformers 4.x (TransformerLens 2.x pins it) loads the checkpoint's tokenizer too."""
    tokenizer.save_pretrained(folder)
    file = Path(folder) / "tokenizer_config.json"
    config = json.loads(file.read_text(encoding="utf-8"))
    if config.get("tokenizer_class") == V5_ONLY_CLASS:
        config["tokenizer_class"] = PORTABLE_CLASS
        file.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def load_tokenizer(name: str):
    """The tokenizer of a base model or checkpoint (a Hub id or a folder)."""
    return AutoTokenizer.from_pretrained(name)


def ensure_pad(tokenizer, model) -> bool:
    """Give `tokenizer` a pad token if it has none, growing the model's embeddings; True if one was added."""
    if tokenizer.pad_token is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
        return False
    tokenizer.add_special_tokens({"pad_token": PAD})
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    return True


def with_chat_template(tokenizer):
    """`tokenizer`, given `CHAT_TEMPLATE` if it has no chat template of its own."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def render_chat(messages: list[dict]) -> str:
    """`CHAT_TEMPLATE` applied to `messages` with the generation prompt (what `apply_chat_template` gives)."""
    return "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages) + "<|assistant|>\n"


def token_ids(tokenizer) -> Callable[[list[str], bool], list[list[int]]]:
    """A function (texts, add_special_tokens) -> the ids `tokenizer(texts)` gives: the tokenizer itself, or
    for a one-token-per-digit tokenizer of `train_tokenizer`, the same pipeline in Python (`digit_ids`)."""
    digits = _digit_vocabulary(tokenizer)

    def ids(texts: list[str], special: bool = False) -> list[list[int]]:
        texts = list(texts)
        if not texts:
            return []
        if digits is not None:
            fast = digit_ids(texts, *digits)
            if fast is not None:
                return fast
        return tokenizer(texts, add_special_tokens=special)["input_ids"]

    return ids


def digit_ids(texts: list[str], vocab: dict, unk: int, added: list[str]) -> list[list[int]] | None:
    """The ids of `texts` under a word-level vocabulary split like `DIGIT_PIPELINE`; None when a text is not
    ASCII or holds an added token (the tokenizer then does it)."""
    joined = "\n".join(texts)
    if not joined.isascii() or any(token in joined for token in added):
        return None
    out = [list(map(vocab.get, pieces)) for pieces in map(DIGIT_PIECES.findall, texts)]
    return [[unk if i is None else i for i in ids] if None in ids else ids for ids in out]


def _digit_vocabulary(tokenizer) -> tuple[dict, int, list[str]] | None:
    """(vocabulary, unknown id, added tokens) of a tokenizer whose whole pipeline is `DIGIT_PIPELINE` and a
    word-level look-up adding no special tokens; None for any other."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or type(backend.model).__name__ != "WordLevel" or backend.num_special_tokens_to_add(False):
        return None
    spec = json.loads(backend.to_str())
    if spec["normalizer"] or spec["pre_tokenizer"] != DIGIT_PIPELINE or spec["truncation"] or spec["padding"]:
        return None
    vocab = spec["model"]["vocab"]
    if spec["model"]["unk_token"] not in vocab:
        return None
    return vocab, vocab[spec["model"]["unk_token"]], [t["content"] for t in spec["added_tokens"]]
