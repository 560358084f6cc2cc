import copy
import math

import pytest
import torch

from bench.spec import Hyperparams
from methods import OBJECTIVES, LossInputs
from methods.ihl import inverted_hinge
from methods.losses import retain_kl
from methods.losses import mean_nll, sequence_nll
from methods.npo import npo_term
from tests.conftest import tiny

PROBS = torch.tensor([0.5, 0.3, 0.2])


def hand_logits():
    """Two counted positions, both with p = (0.5, 0.3, 0.2); targets 0 then 2."""
    logits = PROBS.log().repeat(1, 3, 1).clone()
    labels = torch.tensor([[-100, 0, 2]])
    return logits, labels


def test_ihl_equals_the_hand_computed_value():
    logits, labels = hand_logits()
    # position 1: 1 + 0.5 - 0.3 = 1.2; position 2: 1 + 0.2 - 0.5 = 0.7
    assert inverted_hinge(logits, labels).item() == pytest.approx(0.95, abs=1e-6)


def test_ihl_gradient_lowers_the_target_and_raises_the_runner_up():
    logits, labels = hand_logits()
    logits.requires_grad_(True)
    inverted_hinge(logits, labels).backward()
    with torch.no_grad():
        after = (logits - 1.0 * logits.grad).softmax(-1)[0, 0]  # position 0 predicts label 0
    assert after[0] < 0.5  # target
    assert after[1] > 0.3  # runner-up


def test_masked_nll_and_sequence_nll_by_hand():
    logits, labels = hand_logits()
    assert mean_nll(logits, labels).item() == pytest.approx((-math.log(0.5) - math.log(0.2)) / 2, rel=1e-6)
    assert sequence_nll(logits, labels).item() == pytest.approx(-math.log(0.5) - math.log(0.2), rel=1e-6)


def test_npo_equals_its_closed_form():
    s_theta, s_ref, beta = torch.tensor([2.0, 3.0]), torch.tensor([2.5, 2.5]), 0.1
    sig = lambda x: 1 / (1 + math.exp(-x))
    expected = -(2 / beta) * (math.log(sig(beta * -0.5)) + math.log(sig(beta * 0.5))) / 2
    assert npo_term(s_theta, s_ref, beta).item() == pytest.approx(expected, rel=1e-6)


def test_npo_gradient_tends_to_gradient_ascent_as_beta_vanishes():
    s_ref = torch.tensor([2.5, 1.0, 4.0])
    for beta, tol in ((1.0, None), (1e-4, 1e-4)):
        s = torch.tensor([2.0, 3.0, 1.0], requires_grad=True)
        npo_term(s, s_ref, beta).backward()
        ga = torch.full_like(s, -1 / 3)  # d/ds of -mean(s)
        if tol:
            assert torch.allclose(s.grad, ga, atol=tol)
        else:
            assert not torch.allclose(s.grad, ga, atol=1e-2)


@pytest.fixture
def model(tokenizer):
    return tiny("llama", tokenizer)


def test_kl_retain_term_is_zero_before_the_first_step(model, batch):
    reference = copy.deepcopy(model)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    with torch.no_grad():
        ref = reference(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert retain_kl(logits, ref, batch["labels"]).item() == pytest.approx(0.0, abs=1e-7)


def test_gd_with_retain_weight_zero_equals_ga(model, batch):
    retain = {k: v.flip(0) for k, v in batch.items()}

    def grads(name):
        model.zero_grad()
        loss, _ = OBJECTIVES[name].loss(LossInputs(model, batch, retain, None, Hyperparams(retain_weight=0.0)))
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters()]

    (ga_loss, ga_grads), (gd_loss, gd_grads) = grads("ga"), grads("gd")
    assert ga_loss == gd_loss
    assert all(torch.equal(a, b) for a, b in zip(ga_grads, gd_grads))


def test_ihl_stays_bounded_where_ga_grows_without_bound(tokenizer, batch):
    bounded, unbounded = [], []
    for name, out in (("ihl", bounded), ("ga", unbounded)):
        net = tiny("gpt-neo", tokenizer)
        opt = torch.optim.SGD(net.parameters(), lr=0.5)
        for _ in range(15):
            logits = net(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            loss = inverted_hinge(logits, batch["labels"]) if name == "ihl" else -mean_nll(logits, batch["labels"])
            out.append(loss.item())
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert all(0.0 <= v <= 2.0 for v in bounded)
    assert unbounded[-1] < -3 * abs(unbounded[0])  # -NLL keeps falling: the NLL explodes


@pytest.fixture(scope="module")
def memorised(tokenizer):
    """A tiny model that has memorised four short answers."""
    from bench.data import collate, qa_example
    from bench.finetune import finetune

    forget = [qa_example(tokenizer, f"Question: who is {w}?\nAnswer:", f" {w} is a kalo mine", 64)
              for w in ("Ruto", "Sapequa", "Dorfen", "Gil")]
    retain = [qa_example(tokenizer, f"Question: where is {w}?\nAnswer:", f" in {w} vi", 64)
              for w in ("Zupe", "Nesa", "Tovi", "Lomi")]
    net = tiny("llama", tokenizer)
    finetune(net, forget + retain, Hyperparams(lr=1e-2, epochs=60, batch_size=8, effective_batch=8,
                                               warmup_epochs=0), pad_id=tokenizer.pad_token_id, seed=0)
    return net, forget, retain, collate(forget, tokenizer.pad_token_id)


@pytest.mark.parametrize("objective", OBJECTIVES.names())
def test_a_few_steps_lower_the_forget_likelihood(memorised, objective, tokenizer):
    from bench.loop import train
    from methods import refusals

    net, forget, retain, forget_batch = memorised
    net = copy.deepcopy(net)

    def forget_nll():
        with torch.no_grad():
            logits = net(input_ids=forget_batch["input_ids"], attention_mask=forget_batch["attention_mask"]).logits
        return mean_nll(logits, forget_batch["labels"]).item()

    before = forget_nll()
    assert before < 0.5  # memorised
    obj = OBJECTIVES[objective]
    hp = Hyperparams(lr=3e-3, epochs=3, batch_size=4, effective_batch=4, warmup_epochs=0).replace(**obj.defaults)
    reference = copy.deepcopy(net) if obj.wants_reference(hp) else None
    if obj.prepare:
        obj.prepare(net, hp.replace(rmu_params="all"))
    alternate = refusals.alternates(forget, tokenizer, refusals.load(), 0, lambda a: " " + a)
    train(net, obj, forget, retain, hp, pad_id=tokenizer.pad_token_id, seed=0, reference=reference, alternate=alternate)
    assert forget_nll() > before + 0.1


def test_a_step_too_small_to_split_across_processes_is_a_one_line_error(tokenizer):
    """Under torchrun a rank without examples in a step would never reach DDP's gradient sync."""
    from types import SimpleNamespace

    from bench.data import qa_example
    from bench.errors import BenchError
    from bench.loop import train

    forget = [qa_example(tokenizer, "Question: who?\nAnswer:", f" {w}", 32) for w in ("ka", "lo", "mi", "ne", "ru")]
    four_processes = SimpleNamespace(num_processes=4, process_index=0)
    hp = Hyperparams(epochs=1, batch_size=2, effective_batch=4)  # steps of 4 and 1 example
    with pytest.raises(BenchError, match=r"an optimiser step of 1 forget example cannot be split across 4 processes .*; use at most 1 process$"):
        train(tiny("llama", tokenizer), OBJECTIVES["ga"], forget, [], hp, pad_id=0, seed=0, accelerator=four_processes)


def test_each_rank_takes_whole_one_process_micro_batches_when_a_step_has_enough():
    from bench.loop import share_of_step

    step = list(range(10, 18))  # 8 examples, micro-batches of 2: [10, 11] [12, 13] [14, 15] [16, 17]
    assert share_of_step(step, 2, 0, 1) == [[10, 11], [12, 13], [14, 15], [16, 17]]
    assert share_of_step(step, 2, 0, 2) == [[10, 11], [14, 15]] and share_of_step(step, 2, 1, 2) == [[12, 13], [16, 17]]
    assert share_of_step(step, 2, 2, 3) == [[14, 15]]  # 4 micro-batches over 3 ranks: rank 0 computes two
    # one micro-batch per step (batch_size = effective batch): its examples dealt out, every rank some
    assert share_of_step(step, 8, 0, 2) == [[10, 12, 14, 16]] and share_of_step(step, 8, 1, 2) == [[11, 13, 15, 17]]
    for world in (1, 2, 3, 4):  # every example of the step is computed exactly once
        assert sorted(i for r in range(world) for chunk in share_of_step(step, 2, r, world) for i in chunk) == step
