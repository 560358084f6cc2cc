import math

import pytest
import torch

from suites.extraction import (extraction_likelihood, forgotten, greedy_continuations, memorization_accuracy,
                               naive_continuations, overlap, sequences_tensor, teacher_forced_argmax)
from tests.conftest import tiny


def test_overlap_counts_prediction_ngrams_with_multiplicity_against_the_label():
    # label bigrams: (1,2) (2,3) (3,1) (1,2) -> 4, set {(1,2),(2,3),(3,1)}
    # prediction bigrams: (1,2) (2,1) (1,2) (2,9) -> two hits
    assert overlap([1, 2, 1, 2, 9], [1, 2, 3, 1, 2], 2) == pytest.approx(2 / 4)
    assert overlap([1, 2], [1, 2, 3], 5) == 0.0  # label shorter than n: no n-grams


def test_memorization_accuracy_by_hand():
    ids, lengths = sequences_tensor([[5, 6, 7, 8], [5, 6, 7]], pad_id=0)
    pred = torch.tensor([[6, 0, 8], [9, 7, 4]])  # row 0: hits at t=1, t=3; row 1: hit at t=2; t=3 is padding
    assert memorization_accuracy(pred, ids, lengths).tolist() == pytest.approx([2 / 3, 1 / 2])


def test_extraction_likelihood_by_hand():
    seq = [1, 2, 3, 4, 5]
    # continuations of prefixes 1..4 (lengths 4, 3, 2, 1); with n = 2, i runs 1..3
    conts = [None, [2, 3, 9, 9], [3, 4, 5], [7, 7], [5]]
    # i=1: label 2345 bigrams 23 34 45, pred 2399 -> 23 hit -> 1/3; i=2: 345 vs 345 -> 2/2; i=3: 45 vs 77 -> 0
    assert extraction_likelihood(conts, seq, 2) == pytest.approx((1 / 3 + 1 + 0) / 3)
    with pytest.raises(ValueError):  # no 2-gram after any prefix: no EL_2, not 0 ("nothing extractable")
        extraction_likelihood(conts, [1, 2], 2)


def test_the_stopping_rule_and_its_tie_rule():
    assert forgotten(0.29, 0.04, 0.2994, 0.0499)
    assert not forgotten(0.30, 0.04, 0.2994, 0.0499)
    assert not forgotten(0.29, 0.0499, 0.2994, 0.0499)  # strictly below
    assert forgotten(0.40, 0.0, 0.44, 0.0)  # unseen EL10 is exactly 0: reaching 0 counts
    assert not forgotten(0.40, 0.01, 0.44, 0.0)


@pytest.mark.parametrize("arch", ["gpt-neo", "llama"])
def test_batched_continuations_equal_one_generate_per_prefix(arch, tokenizer):
    torch.manual_seed(0)
    model = tiny(arch, tokenizer, seed=3).eval()
    seqs = [torch.randint(2, len(tokenizer), (L,)).tolist() for L in (12, 9)]
    seqs.append([seqs[0][0]] * 10)  # repeats: greedy argmax often hits
    seqs.append([5, 9, 0, 7, 1, 1, 8, 0, 4, 6, 2])  # EOS (0) and pad (1) inside the text, as in TDEC chunks
    ids, lengths = sequences_tensor(seqs, pad_id=1)
    pred = teacher_forced_argmax(model, ids, lengths)
    batched = greedy_continuations(model, ids, lengths, pred, max_rows=7)
    naive = naive_continuations(model, ids, lengths)
    for j in range(len(seqs)):
        for i in range(1, len(seqs[j])):
            assert batched[j][i] == naive[j][i], (j, i)


class OpaqueModel(torch.nn.Module):
    """The same network where the harness cannot see that logits = lm_head(hidden): the full-logits paths."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, **kwargs):
        return self.inner(**kwargs)


def test_the_projection_only_paths_equal_the_full_logits_paths(tokenizer):
    from suites.privacy import token_stats

    model = tiny("gpt-neo", tokenizer, seed=5).eval()
    seqs = [torch.randint(2, len(tokenizer), (L,), generator=torch.Generator().manual_seed(L)).tolist() for L in (14, 9, 11)]
    ids, lengths = sequences_tensor(seqs, pad_id=1)
    pred = teacher_forced_argmax(model, ids, lengths)
    assert torch.equal(pred, teacher_forced_argmax(OpaqueModel(model), ids, lengths))
    assert greedy_continuations(model, ids, lengths, pred, max_rows=5) == \
        greedy_continuations(OpaqueModel(model), ids, lengths, pred, max_rows=5)
    examples = [{"input_ids": s, "labels": s} for s in seqs]
    for a, b in zip(token_stats(model, examples, 1), token_stats(OpaqueModel(model), examples, 1)):
        assert len(a.logp) == len(b.logp) and a.logp == pytest.approx(b.logp, abs=1e-5)
        assert a.sigma == pytest.approx(b.sigma, abs=1e-5) and (a.correct == b.correct).all()


def test_top1_is_argmax_with_its_tie_rule():
    from suites.extraction import top1

    logits = torch.randn(64, 50257, generator=torch.Generator().manual_seed(0))
    logits[:8] = 0.0  # all tied: the first index
    logits[8:16, 7] = logits[8:16, 3] = 1e4  # two tied maxima: the first of them
    logits[16:24] = -math.inf
    logits[16:24, 11] = logits[16:24, 40000] = 0.0
    assert torch.equal(top1(logits), logits.argmax(-1))
    assert top1(logits)[:24].tolist() == [0] * 8 + [3] * 8 + [11] * 8


def test_utility_perplexity_and_lambada_project_one_row_at_a_time_with_the_numbers_of_the_whole_batch(tokenizer):
    from bench.data import collate
    from methods.losses import logits_of, shifted, token_nll
    from suites.tdec import last_word_accuracy, perplexity

    model = tiny("gpt-neo", tokenizer, seed=7).eval()
    g = torch.Generator().manual_seed(1)
    seqs = [torch.randint(2, len(tokenizer), (L,), generator=g).tolist() for L in (14, 9, 11, 20, 5)]
    with torch.no_grad():  # the previous path: the whole batch's logits at once
        total, count = 0.0, 0
        for start in range(0, len(seqs), 2):
            batch = collate([{"input_ids": s} for s in seqs[start:start + 2]], 1)
            nll, mask = token_nll(logits_of(model, batch), batch["labels"])
            total, count = total + nll.sum().item(), count + int(mask.sum())
    assert perplexity(model, seqs, 1, batch_size=2) == math.exp(total / count)
    assert perplexity(OpaqueModel(model), seqs, 1, batch_size=2) == math.exp(total / count)
    with torch.no_grad():  # two of the five end in the model's own greedy two tokens: hits
        for k in (1, 3):
            for _ in range(2):
                seqs[k] = seqs[k][:-1] + [int(model(input_ids=torch.tensor([seqs[k][:-1]])).logits[0, -1].argmax())] \
                    if _ else seqs[k][:-2] + [int(model(input_ids=torch.tensor([seqs[k][:-2]])).logits[0, -1].argmax()), 0]
    examples = [{"input_ids": s, "labels": [-100] * (len(s) - 2) + s[-2:]} for s in seqs]
    with torch.no_grad():
        preds = [model(input_ids=torch.tensor([s])).logits[0, :-1].argmax(-1) for s in seqs]
    expected = sum(bool((p[-2:] == torch.tensor(s[-2:])).all()) for p, s in zip(preds, seqs)) / len(seqs)
    assert expected == 0.4
    assert last_word_accuracy(model, examples, 1, batch_size=2) == expected
    assert last_word_accuracy(OpaqueModel(model), examples, 1, batch_size=2) == expected
    with torch.no_grad():
        batch = collate(examples, 1)
        lg, targets, mask = shifted(logits_of(model, batch), batch["labels"])
        assert int(((lg.argmax(-1) == targets) | ~mask).all(1).sum()) / len(examples) == expected
