"""Membership inference and memorisation: can an attacker still tell the forget set was trained on?

Every attack gives each example a score where higher = more likely a member (trained on):

- loss:      -mean token NLL (Yeom et al. 2018)
- zlib:      -mean token NLL / zlib-compressed length of the text in bytes (Carlini et al. 2021)
- min_k:     mean of the lowest k% token log-probabilities, k = 0.4 (Shi et al. 2024, Min-K% Prob)
- min_k_pp:  the same over token log-probs standardised by the mean and standard deviation of log p
             under the model's own next-token distribution at that position (Zhang et al. 2024, Min-K%++)
- gradnorm:  -L2 norm of the gradient of the example's mean NLL with respect to the model's weights
             (members sit nearer a minimum; for LoRA / FILA the base weights, i.e. the merged model's)
- reference: NLL under a reference model - NLL under the model (Carlini et al. 2021; the reference
             never trained on either set)

AUC of an attack = P(score(member) > score(non-member)) + 0.5 P(tie), members = the forget set,
non-members = data of the same distribution no model trained on. 0.5: the attacker cannot tell.

privleak (MUSE, Shi et al. 2024, as the open harness computes it) = (s - r) / r x 100 with s = 1 - AUC
of the model and r = 1 - AUC of the retain-only model: 0 = as private as retraining, negative = the
forget set still shows (-100 when the attack is perfect), positive = over-unlearned (the forget set
now looks *less* familiar than unseen data, itself a signal).

Extraction strength (Carlini et al. 2021; open harness): for an answer y of length L, the smallest
prefix length k such that greedy decoding from prompt + y[:k] reproduces y[k:] exactly; ES = 1 - k/L.
Greedy decoding reproduces y[k:] iff every teacher-forced argmax at positions k..L-1 equals the true
token, so one teacher-forced pass gives it. Exact memorisation (Tirumala et al. 2022): the fraction
of answer tokens whose teacher-forced argmax equals the token.
"""

from __future__ import annotations

import math
import warnings
import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from bench.models import decoder_and_head
from bench.phases import phase
from bench.truncation import require_counted
from suites.base import UNIT, Metric

MIN_K = 0.4
ATTACKS = ("loss", "zlib", "min_k", "min_k_pp", "gradnorm", "reference")
IGNORE = -100  # methods.losses.IGNORE; not imported from there, which loads torch (this module must not)


@dataclass
class TokenStats:
    """Per counted token of one example: log p(y_t), the mean and standard deviation of log p under the
    model's own next-token distribution, and whether the argmax is y_t (None for the last three where
    only log p was computed: token_stats(logp_only=True))."""

    logp: np.ndarray
    mu: np.ndarray | None
    sigma: np.ndarray | None
    correct: np.ndarray | None

    @property
    def nll(self) -> float:
        """Mean negative log-likelihood per counted token (nats). Raises ValueError when no token is counted."""
        if not len(self.logp):
            raise ValueError("no counted token: no mean NLL")
        return float(-self.logp.mean())


def token_stats(model, examples: Sequence[dict], pad_id: int, batch_size: int = 32,
                logp_only: bool = False) -> list[TokenStats]:
    """One teacher-forced pass over `examples` (length-sorted batches); only labelled tokens count.
    An example with no counted token raises BenchError (every attack score would be a mean over nothing).
    `logp_only`: log p(y_t) alone (what a mean NLL needs: the Reference attack's model), the same values
    without the four other vocabulary-sized tensors per token of mu and sigma.

    The statistics need several vocabulary-sized tensors per token (log p, p, p log p, ...): where the
    model's logits are lm_head(last hidden state) they are computed one example at a time (a batch of 64
    200-token sequences over GPT-2's 50k vocabulary would otherwise hold about 13 GB of them)."""
    # torch loads when this runs, not when the CLI imports suites.privacy
    import torch

    from bench.data import collate, to_device
    from methods.losses import logits_of, shifted
    from suites.extraction import top1

    require_counted(examples, "attacked example")

    device = next(model.parameters()).device
    split = decoder_and_head(model)
    was_training = model.training
    model.eval()
    out: list[TokenStats | None] = [None] * len(examples)
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i]["input_ids"]))

    def stats_of(logits, labels) -> TokenStats:  # one example: logits [1, T, V], labels [1, T]
        logits, targets, mask = shifted(logits, labels)
        logp_all = logits.log_softmax(-1)
        m = mask[0]
        if logp_only:
            logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            return TokenStats(logp[0][m].double().cpu().numpy(), None, None, None)
        p_all = logp_all.exp()
        mu = (p_all * logp_all).sum(-1)
        sigma = ((p_all * logp_all.pow(2)).sum(-1) - mu.pow(2)).clamp(min=0).sqrt()
        logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        correct = top1(logits) == targets
        return TokenStats(*(t[0][m].double().cpu().numpy() for t in (logp, mu, sigma)), correct[0][m].cpu().numpy())

    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = to_device(collate([examples[i] for i in idx], pad_id), device)
            if split is None:
                logits = logits_of(model, batch)
                for row, i in enumerate(idx):
                    out[i] = stats_of(logits[row:row + 1], batch["labels"][row:row + 1])
            else:
                hidden = split[0](input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
                for row, i in enumerate(idx):
                    n = len(examples[i]["input_ids"])  # right padding: the example's own positions
                    out[i] = stats_of(split[1](hidden[row:row + 1, :n]), batch["labels"][row:row + 1, :n])
    model.train(was_training)
    return out  # type: ignore[return-value]


def lowest_mean(values: np.ndarray, k: float = MIN_K) -> float:
    """Mean of the lowest ceil-free int(k * n) values (at least one); no value raises ValueError."""
    if len(values) == 0:
        raise ValueError("no token: no Min-K% mean")
    n = max(1, int(len(values) * k))
    return float(np.sort(values)[:n].mean())


def zlib_length(text: str) -> int:
    """Length in bytes of the zlib-compressed UTF-8 text: the zlib attack's denominator (Carlini et al. 2021)."""
    return len(zlib.compress(text.encode("utf-8")))


def teacher_forced_scores(stats: Sequence[TokenStats], texts: Sequence[str]) -> dict[str, np.ndarray]:
    """The attacks one teacher-forced pass gives: loss, zlib, min_k, min_k_pp."""
    eps = 1e-12
    return {
        "loss": np.array([-s.nll for s in stats]),
        "zlib": np.array([-s.nll / zlib_length(t) for s, t in zip(stats, texts)]),
        "min_k": np.array([lowest_mean(s.logp) for s in stats]),
        "min_k_pp": np.array([lowest_mean((s.logp - s.mu) / (s.sigma + eps)) for s in stats]),
    }


def extraction_strength(correct: np.ndarray) -> float:
    """1 - k/L for the smallest k with every teacher-forced argmax from k on correct (L = answer length);
    an empty answer raises ValueError."""
    n = len(correct)
    if n == 0:
        raise ValueError("no answer token: no extraction strength")
    wrong = np.flatnonzero(~correct.astype(bool))
    k = 0 if len(wrong) == 0 else int(wrong[-1]) + 1
    return 1.0 - k / n


def exact_memorisation(correct: np.ndarray) -> float:
    """Exact memorisation in [0, 1] (Tirumala et al. 2022): the mean of the per-token `correct` flags
    (teacher-forced argmax = token).

    Raises ValueError when there is no answer token.
    """
    if not len(correct):
        raise ValueError("no answer token: no exact memorisation")
    return float(np.mean(correct))


def auc(members: Sequence[float], non_members: Sequence[float]) -> float:
    """P(member score > non-member score) + 0.5 P(tie): the Mann-Whitney U statistic / (n1 n2)."""
    # scipy loads when this runs, not when the CLI imports suites.privacy
    from scipy.stats import mannwhitneyu

    m, n = np.asarray(members, dtype=float), np.asarray(non_members, dtype=float)
    if len(m) == 0 or len(n) == 0:
        return math.nan
    return float(mannwhitneyu(m, n, alternative="two-sided").statistic / (len(m) * len(n)))


def auc_null_halfwidth(n_members: int, n_non_members: int, z: float = 1.96) -> float:
    """Half-width of the range in which the AUC of two samples from one distribution falls 95% of the time
    (normal approximation of the Mann-Whitney U null: sd = sqrt((n1 + n2 + 1) / (12 n1 n2))). With items
    grouped (TOFU: 20 questions per author) pass the number of independent groups: an AUC, or a difference
    of two, smaller than this says nothing about membership (docs/metrics.md)."""
    if n_members < 1 or n_non_members < 1:
        return math.inf
    return z * math.sqrt((n_members + n_non_members + 1) / (12.0 * n_members * n_non_members))


def privleak(auc_model: float, auc_retain: float) -> float:
    """(s - r) / r x 100 with s = 1 - AUC of the model, r = 1 - AUC of the retain-only model."""
    s, r = 1.0 - auc_model, 1.0 - auc_retain
    return (s - r) / r * 100.0 if r > 0 else math.nan


def _weights(model):
    """The weights the gradient is taken with respect to: for PEFT models the base weights (the
    gradient of the merged weight), not the adapter factors, so adapters are attacked like full models."""
    return {n: p for n, p in model.named_parameters() if "lora_" not in n and p.is_floating_point()}


def gradnorm_scores(model, examples: Sequence[dict], pad_id: int, memory_floats: int = 1 << 23) -> np.ndarray:
    """-||grad_w mean NLL(example)|| for each example. Per-example gradients with torch.func (vmap over
    a chunk of examples, as many as `memory_floats` gradient entries allow: on tofu-mini 12 per chunk ran
    6x faster than 200, measured); models vmap cannot trace fall back to one backward pass per example."""
    # torch loads when this runs, not when the CLI imports suites.privacy
    from bench.data import collate, to_device

    require_counted(examples, "attacked example")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    weights = _weights(model)
    n_params = sum(p.numel() for p in weights.values())
    chunk = max(1, memory_floats // max(n_params, 1))
    out = np.empty(len(examples), dtype=np.float64)
    try:
        for start in range(0, len(examples), chunk):
            batch = to_device(collate(examples[start:start + chunk], pad_id), device)
            out[start:start + chunk] = _vmapped_norms(model, weights, batch) if chunk > 1 else \
                _looped_norms(model, weights, batch)
    except (RuntimeError, NotImplementedError, ValueError):  # what vmap cannot trace: one example at a time
        for start in range(len(examples)):
            batch = to_device(collate(examples[start:start + 1], pad_id), device)
            out[start] = _looped_norms(model, weights, batch)[0]
    finally:
        model.train(was_training)
    return -out


def _vmapped_norms(model, weights: dict, batch: dict) -> np.ndarray:
    # torch loads when this runs, not when the CLI imports suites.privacy
    import torch
    from torch.func import functional_call, grad, vmap

    from methods.losses import mean_nll

    frozen = {n: p.detach() for n, p in weights.items()}

    # no attention mask: padding is on the right, so under the causal mask no counted token sees a pad,
    # and the mask's data-dependent shortcuts in some architectures are what vmap cannot trace
    def loss_one(w, ids, labels):
        logits = functional_call(model, w, args=(), kwargs={"input_ids": ids[None]}).logits
        return mean_nll(logits, labels[None])

    with warnings.catch_warnings():  # CPU attention has no batching rule yet: torch loops inside, correctly
        warnings.filterwarnings("ignore", message=".*batching rule.*")
        grads = vmap(grad(loss_one), in_dims=(None, 0, 0))(frozen, batch["input_ids"], batch["labels"])
    sq = sum(g.detach().float().pow(2).flatten(1).sum(1) for g in grads.values())
    return torch.sqrt(sq).double().cpu().numpy()


def _looped_norms(model, weights: dict, batch: dict) -> np.ndarray:
    # torch loads when this runs, not when the CLI imports suites.privacy
    import torch

    from methods.losses import logits_of, mean_nll

    params = list(weights.values())
    flags = [p.requires_grad for p in params]
    out = []
    try:
        for p in params:
            p.requires_grad_(True)
        for i in range(batch["input_ids"].shape[0]):
            one = {k: v[i:i + 1] for k, v in batch.items()}
            with torch.enable_grad():
                grads = torch.autograd.grad(mean_nll(logits_of(model, one), one["labels"]), params, allow_unused=True)
            out.append(math.sqrt(sum(float(g.float().pow(2).sum()) for g in grads if g is not None)))
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
    return np.array(out)


def answer_text(example: dict, tokenizer) -> str:
    """The example's labelled (answer) tokens decoded to text, special tokens skipped: what the zlib attack
    compresses."""
    return tokenizer.decode([t for t in example["labels"] if t != IGNORE], skip_special_tokens=True)


def model_scores(model, tokenizer, members: Sequence[dict], non_members: Sequence[dict],
                 batch_size: int = 32) -> dict:
    """Per-example attack scores (all but reference) and NLLs of members and non-members, and the
    members' extraction strength and exact memorisation, from one teacher-forced pass + GradNorm."""
    examples = list(members) + list(non_members)
    with phase("attack_statistics"):
        stats = token_stats(model, examples, tokenizer.pad_token_id, batch_size)
        scores = teacher_forced_scores(stats, [answer_text(e, tokenizer) for e in examples])
    with phase("gradnorm"):
        scores["gradnorm"] = gradnorm_scores(model, examples, tokenizer.pad_token_id)
    n = len(members)
    return {"n_members": n,
            "nll": [s.nll for s in stats],
            "scores": {k: v.tolist() for k, v in scores.items()},
            "es": [extraction_strength(s.correct) for s in stats[:n]],
            "em": [exact_memorisation(s.correct) for s in stats[:n]]}


def reference_auc(items: dict, reference_nll: Sequence[float]) -> float:
    """AUC of the Reference attack: score = NLL under the reference model - NLL under the model."""
    n = items["n_members"]
    score = np.asarray(reference_nll) - np.asarray(items["nll"])
    return auc(score[:n], score[n:])


def metrics_of(items: dict, reference_nll: Sequence[float] | None = None,
               memorisation: bool = True) -> dict[str, float]:
    """AUC of every attack (reference only when the reference model's NLLs are given) and, for QA
    suites, the members' mean extraction strength and exact memorisation."""
    n = items["n_members"]
    out = {f"mia_{name}": auc(s[:n], s[n:]) for name, s in items["scores"].items()}
    if reference_nll is not None:
        out["mia_reference"] = reference_auc(items, reference_nll)
    if memorisation:
        out["extraction_strength"] = float(np.mean(items["es"]))
        out["exact_memorisation"] = float(np.mean(items["em"]))
    return out


ATTACK_NAMES = {"loss": "LOSS", "zlib": "ZLib", "min_k": "Min-K% (k 0.4)", "min_k_pp": "Min-K%++ (k 0.4)",
                "gradnorm": "GradNorm", "reference": "Reference"}


def attack_metrics(non_members: str) -> tuple:
    """The suite Metrics of the six attack AUCs (forget set vs `non_members`); best = nearest the calibrating
    model's AUC on the same items where the run records one (bench.runs.calibration), else nearest 0.5."""
    return tuple(Metric(f"mia_{a}", False, f"AUC of the {ATTACK_NAMES[a]} membership attack, forget set vs {non_members} "
                        "(best: the retain-only / reference model's AUC on the same items, else 0.5)", bounds=UNIT,
                        ideal=0.5, calibrated=True) for a in ATTACKS)


def memorisation_metrics() -> tuple:
    """The Metric definitions (direction, formula, bounds) of privleak (MUSE, Shi et al. 2024), extraction_strength
    (Carlini et al. 2021) and exact_memorisation (Tirumala et al. 2022), as the open harness reports them.
    """
    return (Metric("privleak", False, "(AUC gap to the retain-only model) (s - r) / r x 100, s = 1 - AUC, r = 1 - AUC "
                   "of the retain-only model, on the `privleak_attack` attack (0 = as private as retraining)",
                   bounds=(-100.0, math.inf), ideal=0.0),
            Metric("extraction_strength", False, "mean over forget answers of 1 - (shortest prefix fraction from which "
                   "greedy decoding reproduces the rest)", bounds=UNIT),
            Metric("exact_memorisation", False, "fraction of forget answer tokens whose teacher-forced argmax is the "
                   "token", bounds=UNIT))
