"""Membership attacks, AUC, privleak, extraction strength and exact memorisation against hand
computations on fixed logits and hand-made sequences; per-example gradient norms against one
backward pass per example."""

import math
import zlib

import numpy as np
import pytest
import torch

from suites import privacy
from suites.privacy import TokenStats
from tests.conftest import tiny

P = [0.5, 0.3, 0.2]


class FixedLogits(torch.nn.Module):
    """A 'model' whose next-token distribution is P at every position."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None):
        logits = torch.tensor(P).log().expand(*input_ids.shape, 3).clone()
        return type("Out", (), {"logits": logits})()


def test_token_stats_by_hand():
    # prompt token 0, then answer tokens 0, 2, 1: log-probs log .5, log .2, log .3
    [s] = privacy.token_stats(FixedLogits(), [{"input_ids": [0, 0, 2, 1], "labels": [-100, 0, 2, 1]}], pad_id=0)
    assert np.allclose(s.logp, np.log([0.5, 0.2, 0.3]))
    mu = sum(p * math.log(p) for p in P)
    sigma = math.sqrt(sum(p * math.log(p) ** 2 for p in P) - mu ** 2)
    assert np.allclose(s.mu, mu) and np.allclose(s.sigma, sigma)
    assert s.correct.tolist() == [True, False, False]  # the argmax is always token 0
    assert s.nll == pytest.approx(-(math.log(0.5) + math.log(0.2) + math.log(0.3)) / 3)


def test_teacher_forced_attacks_by_hand():
    logp = np.log([0.5, 0.2, 0.3, 0.9, 0.1])
    mu, sigma = np.full(5, -1.0), np.full(5, 0.5)
    s = TokenStats(logp, mu, sigma, np.ones(5, bool))
    [scores] = [privacy.teacher_forced_scores([s], ["Gil is a kalo mine"])]
    nll = -logp.mean()
    assert scores["loss"][0] == pytest.approx(-nll)
    assert scores["zlib"][0] == pytest.approx(-nll / len(zlib.compress(b"Gil is a kalo mine")))
    lowest_two = np.sort(logp)[:2]  # int(0.4 * 5) = 2 lowest: log .1, log .2
    assert scores["min_k"][0] == pytest.approx(lowest_two.mean())
    assert scores["min_k_pp"][0] == pytest.approx(((lowest_two + 1.0) / 0.5).mean())


def brute_auc(members, non_members):
    pairs = [(m > n) + 0.5 * (m == n) for m in members for n in non_members]
    return sum(pairs) / len(pairs)


def test_auc_equals_pair_counting_with_ties():
    rng = np.random.default_rng(0)
    members, non = rng.integers(0, 5, 13).astype(float), rng.integers(0, 5, 9).astype(float)
    assert privacy.auc(members, non) == pytest.approx(brute_auc(members, non))
    assert privacy.auc([3, 4], [1, 2]) == 1.0 and privacy.auc([1, 2], [3, 4]) == 0.0
    assert privacy.auc([1, 1], [1, 1]) == 0.5


def test_privleak_by_hand_and_zero_for_the_retain_model():
    assert privacy.privleak(0.5, 0.5) == 0.0
    assert privacy.privleak(0.7, 0.6) == pytest.approx((0.3 - 0.4) / 0.4 * 100)
    assert privacy.privleak(1.0, 0.5) == pytest.approx(-100.0)


def test_extraction_strength_and_exact_memorisation_by_hand():
    seq = lambda bits: np.array(bits, dtype=bool)
    assert privacy.extraction_strength(seq([1, 1, 1, 1])) == 1.0  # reproduced from the prompt alone
    assert privacy.extraction_strength(seq([0, 1, 1, 1])) == 0.75  # needs the first token: k = 1 of 4
    assert privacy.extraction_strength(seq([1, 1, 0, 1, 1])) == pytest.approx(1 - 3 / 5)
    assert privacy.extraction_strength(seq([1, 1, 1, 0])) == 0.0  # the last token is never reproduced
    assert privacy.exact_memorisation(seq([1, 1, 0, 1, 1])) == pytest.approx(0.8)


def test_extraction_strength_matches_greedy_decoding(tokenizer):
    """The teacher-forced shortcut against generating from every prefix."""
    from bench.data import qa_example

    model = tiny("gpt-neo", tokenizer, seed=3)
    ex = qa_example(tokenizer, "Question: who is Gil?\nAnswer:", " Gil is a kalo mine", 64)
    [s] = privacy.token_stats(model, [ex], tokenizer.pad_token_id)
    start = ex["labels"].index(next(t for t in ex["labels"] if t != -100))
    answer = ex["input_ids"][start:]
    k_greedy = len(answer)
    for k in range(len(answer)):
        ids = torch.tensor([ex["input_ids"][:start + k]])
        out = model.generate(ids, max_new_tokens=len(answer) - k, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=None)
        if out[0, start + k:].tolist() == answer[k:]:
            k_greedy = k
            break
    assert privacy.extraction_strength(s.correct) == pytest.approx(1 - k_greedy / len(answer))


@pytest.mark.parametrize("arch", ["llama", "gpt-neo", "phi"])
def test_gradnorm_equals_one_backward_pass_per_example(tokenizer, batch, arch):
    from bench.data import collate, qa_example
    from methods.losses import nll_of

    model = tiny(arch, tokenizer)
    examples = [qa_example(tokenizer, f"Question: who is {w}?\nAnswer:", f" {w} is a kalo", 64) for w in ("Ru", "Sapequa", "Gil")]
    expected = []
    for ex in examples:
        model.zero_grad()
        nll_of(model, collate([ex], tokenizer.pad_token_id)).backward()
        expected.append(math.sqrt(sum(float(p.grad.pow(2).sum()) for p in model.parameters() if p.grad is not None)))
    for floats in (1 << 23, 1):  # vmapped chunks, and one example at a time
        got = -privacy.gradnorm_scores(model, examples, tokenizer.pad_token_id, memory_floats=floats)
        assert np.allclose(got, expected, rtol=1e-4)


def test_gradnorm_of_an_adapter_model_is_taken_on_the_merged_weights(tokenizer):
    from bench.data import qa_example
    from methods import lora

    examples = [qa_example(tokenizer, "Question: who is Gil?\nAnswer:", " Gil is a kalo", 64)]
    plain = -privacy.gradnorm_scores(tiny("llama", tokenizer), examples, tokenizer.pad_token_id)
    wrapped = -privacy.gradnorm_scores(lora.wrap(tiny("llama", tokenizer), 4), examples, tokenizer.pad_token_id)
    assert np.allclose(plain, wrapped, rtol=1e-5)  # B = 0: the same function, the same gradient


def test_metrics_of_adds_the_reference_attack_when_given():
    items = {"n_members": 2, "nll": [0.1, 0.2, 0.9, 0.8],
             "scores": {"loss": [-0.1, -0.2, -0.9, -0.8]}, "es": [1.0, 0.5], "em": [1.0, 0.75]}
    out = privacy.metrics_of(items, reference_nll=[0.5, 0.5, 0.5, 0.5])
    assert out["mia_loss"] == 1.0 and out["mia_reference"] == 1.0
    assert out["extraction_strength"] == 0.75 and out["exact_memorisation"] == 0.875
    assert "mia_reference" not in privacy.metrics_of(items)


def test_logp_only_statistics_give_the_full_passes_nll_exactly(tokenizer):
    import torch

    from suites.privacy import token_stats
    from tests.conftest import tiny

    model = tiny("gpt-neo", tokenizer, seed=2).eval()
    g = torch.Generator().manual_seed(4)
    examples = [{"input_ids": s, "labels": [-100] * 3 + s[3:]}
                for s in (torch.randint(2, len(tokenizer), (L,), generator=g).tolist() for L in (16, 9, 23))]
    full, only = token_stats(model, examples, 1, batch_size=2), token_stats(model, examples, 1, batch_size=2, logp_only=True)
    assert [s.nll for s in only] == [s.nll for s in full]  # the Reference attack's NLLs, bit for bit
    assert all((a.logp == b.logp).all() and b.mu is None for a, b in zip(full, only))
    assert [len(s.logp) for s in only] == [13, 6, 20]  # tokens 3 .. L-1
