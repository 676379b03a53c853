"""Tokenizers: trained on the corpus for models built from scratch, or the base model's own.

From scratch, multmath gets a word-level vocabulary with one token per digit and per symbol
(`*`, `+`, `(`, `)`, `||`, `####`), the other corpora a byte-level BPE trained on their training
text whose words keep identifiers whole (`check_in_date` can be one token, which makes copying
column names a one-token lookup) (for the qwen2 family, with the pre-tokenization that `Qwen2Tokenizer` imposes on reload;
the digit vocabulary cannot survive that, so multmath is refused for qwen2). Both are wrapped as a `PreTrainedTokenizerFast` with `<|endoftext|>` as BOS and EOS and a
separate `<|pad|>`, so `AutoTokenizer.from_pretrained(folder)` loads them from the checkpoint.
A base model's tokenizer that has no pad token gets a new `<|pad|>` (the model's embeddings are
resized to match by `ensure_pad`).
"""

from __future__ import annotations

from typing import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

EOS, PAD, UNK = "<|endoftext|>", "<|pad|>", "<|unk|>"
# words for the BPE: identifiers (letters, digits, `_`) stay whole, so `check_in_date` can become one
# token (GPT-2's split would cut it at every `_`), each with the space before it
WORDS = r""" ?[A-Za-z0-9_]+| ?[^\sA-Za-z0-9_]+|\s+(?!\S)|\s+"""
# transformers loads every qwen2 folder with Qwen2Tokenizer, which rebuilds the pipeline around the
# saved vocabulary: NFC, this split, then byte-level. A qwen2 model's BPE is trained with the same.
QWEN2_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def train_tokenizer(texts: Iterable[str], digits: bool, vocab_size: int, qwen2: bool = False) -> PreTrainedTokenizerFast:
    """A tokenizer trained on `texts`: word-level with single digits if `digits`, else byte-level BPE
    (with Qwen2Tokenizer's pipeline if `qwen2`)."""
    if digits:
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                     pre_tokenizers.Digits(individual_digits=True)])
        trainer = trainers.WordLevelTrainer(special_tokens=[EOS, PAD, UNK])
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
