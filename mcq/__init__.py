"""mcq: multiple-choice corpora for studying how models map a known answer to its label.

`mcq.sources` owns the question sources (generator, renderer and independent verifier each),
`mcq.labels` the label schemes, styles and the MMLU-style prompt, `mcq.generate` one verified
record per index (level ladder, gold balance, counterfactual partners, single-token check),
`mcq.card` the dataset card's facts and statistics (its prose is `mcq/card.md`), `mcq.generator`
the options, card and training view it declares to `cards.generator`, and `mcq.cli` the `mcq-gen`
command.
"""
