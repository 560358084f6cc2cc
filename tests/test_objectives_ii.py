"""The second set of objectives against hand computations: values and gradients on small logits and
hidden states, the retain regulariser choice, RMU's layer and parameter choice, IdkDPO's refusals, and
that specs of the first objectives keep their ids."""

import copy
import math

import pytest
import torch

from bench.errors import BenchError
from bench.spec import Hyperparams, RunSpec
from methods import OBJECTIVES, LossInputs, expand_methods, refusals
from methods.ceu import without_true_token
from methods.idkdpo import dpo_term
from methods.losses import mean_nll, retain_kl, retain_term
from methods.rmu import choose_parameters, direction, mean_squared_distance, steered_layer
from methods.simnpo import simnpo_term
from methods.undial import adjusted_logits, soft_cross_entropy
from methods.wga import weighted_ascent
from tests.conftest import tiny

P = [0.5, 0.3, 0.2]


def hand_logits():
    """Two counted positions, both with p = (0.5, 0.3, 0.2); targets 0 then 2 (as in test_objectives)."""
    logits = torch.tensor(P).log().repeat(1, 3, 1).clone()
    return logits, torch.tensor([[-100, 0, 2]])


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_simnpo_value_and_gradient_by_hand():
    nll, beta, delta = torch.tensor([0.4, 2.0], requires_grad=True), 4.5, 0.5
    value = simnpo_term(nll, beta, delta)
    expected = -(2 / beta) * sum(math.log(sig(beta * (n - delta))) for n in (0.4, 2.0)) / 2
    assert value.item() == pytest.approx(expected, rel=1e-6)
    value.backward()
    # d/dn of -(2/beta) log sig(beta (n - delta)) / B = -(2/B) (1 - sig(beta (n - delta)))
    for g, n in zip(nll.grad.tolist(), (0.4, 2.0)):
        assert g == pytest.approx(-(1 - sig(beta * (n - delta))), rel=1e-5)


def test_simnpo_is_the_objective_on_length_normalised_nll(tokenizer, batch):
    net = tiny("llama", tokenizer)
    hp = Hyperparams(retain_weight=0.0).replace(**OBJECTIVES["simnpo"].defaults)
    loss, _ = OBJECTIVES["simnpo"].loss(LossInputs(net, batch, batch, None, hp))
    from methods.losses import logits_of, sequence_mean_nll

    nll = sequence_mean_nll(logits_of(net, batch), batch["labels"])
    assert loss.item() == pytest.approx(0.125 * simnpo_term(nll, 4.5, 0.0).item(), rel=1e-6)


def test_dpo_value_and_gradient_by_hand():
    s_win = torch.tensor([3.0], requires_grad=True)
    s_lose = torch.tensor([1.0], requires_grad=True)
    beta = 0.1
    value = dpo_term(s_win, torch.tensor([2.5]), s_lose, torch.tensor([1.5]), beta)
    margin = -(3.0 - 2.5) + (1.0 - 1.5)  # = -1
    assert value.item() == pytest.approx(-(2 / beta) * math.log(sig(beta * margin)), rel=1e-6)
    value.backward()
    # lowering the refusal's NLL and raising the answer's both lower the loss
    assert s_win.grad.item() == pytest.approx(2 * (1 - sig(beta * margin)), rel=1e-5)
    assert s_lose.grad.item() == pytest.approx(-2 * (1 - sig(beta * margin)), rel=1e-5)


def test_wga_and_satimp_weights_by_hand():
    logits, labels = hand_logits()
    # counted tokens: p = 0.5 (NLL ln 2) and p = 0.2 (NLL ln 5)
    wga = weighted_ascent(logits, labels, lambda p: p ** 1.0)
    assert wga.item() == pytest.approx(-(0.5 * math.log(2) + 0.2 * math.log(5)) / 2, rel=1e-6)
    sat = weighted_ascent(logits, labels, lambda p: p ** 5 * (1 - p) ** 1)
    w = [0.5 ** 5 * 0.5, 0.2 ** 5 * 0.8]
    assert sat.item() == pytest.approx(-(w[0] * math.log(2) + w[1] * math.log(5)) / 2, rel=1e-6)


def test_wga_gradient_is_the_weighted_ascent_gradient():
    logits, labels = hand_logits()
    logits.requires_grad_(True)
    weighted_ascent(logits, labels, lambda p: p).backward()
    p = torch.tensor(P)
    # d/dz of -(w NLL)/2 with w detached = -(w/2) (p - onehot(y))
    expected0 = -(0.5 / 2) * (p - torch.tensor([1.0, 0, 0]))
    expected1 = -(0.2 / 2) * (p - torch.tensor([0, 0, 1.0]))
    assert torch.allclose(logits.grad[0, 0], expected0, atol=1e-6)
    assert torch.allclose(logits.grad[0, 1], expected1, atol=1e-6)
    assert torch.equal(logits.grad[0, 2], torch.zeros(3))  # the last position predicts nothing


def test_undial_target_and_loss_by_hand():
    logits, labels = hand_logits()
    beta = 10.0
    target = adjusted_logits(logits, labels, beta)
    q0 = torch.tensor([0.5 * math.exp(-beta), 0.3, 0.2])
    q0 /= q0.sum()
    assert torch.allclose(target[0, 0].softmax(-1), q0, atol=1e-6)
    assert torch.equal(target[0, 2], logits[0, 2])  # no label: unchanged
    z = logits.clone().requires_grad_(True)
    value = soft_cross_entropy(z, target, labels)
    q1 = torch.tensor([0.5, 0.3, 0.2 * math.exp(-beta)])
    q1 /= q1.sum()
    logp = torch.tensor(P).log()
    expected = (-(q0 * logp).sum() - (q1 * logp).sum()) / 2
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)
    value.backward()
    assert torch.allclose(z.grad[0, 0], (torch.tensor(P) - q0) / 2, atol=1e-6)  # d CE / dz = (p - q) / n


def test_ceu_target_removes_the_true_token():
    logits, labels = hand_logits()
    z = logits.clone().requires_grad_(True)
    target = without_true_token(z, labels)
    assert not target.requires_grad
    q0 = torch.tensor([0.0, 0.3, 0.2]) / 0.5  # true token 0 removed, the rest renormalised
    assert torch.allclose(target[0, 0].softmax(-1), q0, atol=1e-6)
    value = soft_cross_entropy(z, target, labels)
    q1 = torch.tensor([0.5, 0.3, 0.0]) / 0.8
    logp = torch.tensor(P).log()
    assert value.item() == pytest.approx(((-(q0 * logp).sum() - (q1 * logp).sum()) / 2).item(), rel=1e-6)
    value.backward()
    assert torch.allclose(z.grad[0, 1], (torch.tensor(P) - q1) / 2, atol=1e-6)
    assert z.grad[0, 0, 0] > 0  # descending lowers the true token's logit


def test_rmu_distance_and_direction_by_hand():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]])
    target = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])  # the third token is not an answer token
    # token 1: (1 + 4) / 2 = 2.5; token 2: (4 + 9) / 2 = 6.5; mean 4.5
    assert mean_squared_distance(h, target, mask).item() == pytest.approx(4.5)
    u = direction(8, seed=3, c=2.0, device="cpu")
    assert u.norm().item() == pytest.approx(2.0, rel=1e-6)
    assert torch.equal(u, direction(8, seed=3, c=2.0, device="cpu"))
    assert not torch.equal(u, direction(8, seed=4, c=2.0, device="cpu"))


def test_rmu_gradient_pulls_the_forget_activation_to_the_direction(tokenizer, batch):
    net = tiny("llama", tokenizer)
    hp = Hyperparams(retain_weight=0.0, rmu_c=2.0)
    x = LossInputs(net, batch, batch, None, hp, seed=0)
    before, _ = OBJECTIVES["rmu"].loss(x)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in range(5):
        loss, _ = OBJECTIVES["rmu"].loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert OBJECTIVES["rmu"].loss(x)[0].item() < before.item()


def test_rmu_layer_is_checked_against_the_model(tokenizer):
    net = tiny("llama", tokenizer)  # 2 blocks: only block 0 is steerable
    assert steered_layer(net, Hyperparams(rmu_layer=-1)) == 0
    with pytest.raises(BenchError, match=r"rmu_layer=5 \(this model has 2 blocks: expected 0\.\.0"):
        steered_layer(net, Hyperparams(rmu_layer=5))


@pytest.mark.parametrize("arch,module", [("llama", "mlp.down_proj"), ("gpt-neo", "mlp.c_proj"), ("phi", "mlp.fc2")])
def test_rmu_wmdp_preset_trains_only_mlp_output_projections(tokenizer, arch, module):
    net = tiny(arch, tokenizer)
    choose_parameters(net, Hyperparams())
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    assert trainable and all(".0." + module in n for n in trainable)
    from methods import lora

    wrapped = lora.wrap(tiny(arch, tokenizer), 4)
    choose_parameters(wrapped, Hyperparams())
    trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert trainable and all(".0." + module in n and "lora_" in n for n in trainable)


def test_retain_regulariser_choice(tokenizer, batch):
    net = tiny("llama", tokenizer)
    reference = copy.deepcopy(net)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    retain = {k: v.flip(0) for k, v in batch.items()}
    nll, parts = retain_term(LossInputs(net, batch, retain, None, Hyperparams(retain_weight=2.0)))
    logits = net(input_ids=retain["input_ids"], attention_mask=retain["attention_mask"]).logits
    assert nll.item() == pytest.approx(2 * mean_nll(logits, retain["labels"]).item(), rel=1e-6)
    assert set(parts) == {"retain_nll"}
    kl, parts = retain_term(LossInputs(net, batch, retain, reference, Hyperparams(retain_weight=2.0, retain_loss="kl")))
    with torch.no_grad():
        ref = reference(input_ids=retain["input_ids"], attention_mask=retain["attention_mask"]).logits
    assert kl.item() == pytest.approx(2 * retain_kl(logits, ref, retain["labels"]).item(), rel=1e-5)
    assert kl.item() > 0 and set(parts) == {"retain_kl"}


def test_reference_model_only_when_a_term_reads_it():
    plain, kl = Hyperparams(), Hyperparams(retain_loss="kl")
    wants = {name: OBJECTIVES[name].wants_reference(plain) for name in OBJECTIVES.names()}
    assert {n for n, w in wants.items() if w} == {"kl", "npo", "idkdpo", "rmu", "undial"}
    assert OBJECTIVES["gd"].wants_reference(kl) and OBJECTIVES["simnpo"].wants_reference(kl)
    assert not OBJECTIVES["ga"].wants_reference(kl)  # no retain term
    assert not OBJECTIVES["ceu"].wants_reference(kl.replace(retain_weight=0.0))


def test_refusals_are_many_distinct_and_paired_by_seed(tokenizer, batch):
    answers = refusals.load()
    assert len(set(answers)) == len(answers) >= 100
    assert refusals.pair(20, answers, 1) == refusals.pair(20, answers, 1) != refusals.pair(20, answers, 2)
    from bench.data import qa_example

    forget = [qa_example(tokenizer, "Question: who is Gil?\nAnswer:", " Gil is a kalo mine", 64)]
    (alt,) = refusals.alternates(forget, tokenizer, ["I don't know."], 0, lambda a: " " + a)
    n_prompt = forget[0]["labels"].count(-100)
    assert alt["input_ids"][:n_prompt] == forget[0]["input_ids"][:n_prompt]
    answer = [t for t in alt["labels"] if t != -100]
    assert tokenizer.decode(answer[:-1]) == " I don't know." and answer[-1] == tokenizer.eos_token_id


def test_a_missing_refusal_file_is_a_one_line_error(tmp_path):
    from bench.grid import expand

    with pytest.raises(BenchError, match="bad option idk_answers="):
        expand("tofu-mini", "idkdpo+lora", options={"idk_answers": str(tmp_path / "nope.txt")})
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe")
    with pytest.raises(BenchError, match=r"bad option idk_answers=.* \(not UTF-8 text"):
        expand("tofu-mini", "idkdpo+lora", options={"idk_answers": str(tmp_path / "binary.txt")})
    with pytest.raises(BenchError, match="read by no run of this grid"):  # GA reads no refusal file
        expand("tofu-mini", "ga+lora", options={"idk_answers": str(tmp_path / "nope.txt")})


def test_first_objectives_keep_their_spec_ids_and_new_ones_record_what_they_read():
    ga = RunSpec("tofu-mini", "tiny-llama", "forget01", "ga", "lora", 4, 0, Hyperparams(), ())
    # the canonical form of a GA spec from before the second set of objectives existed
    assert '"beta"' not in ga.canonical_json() and "retain_loss" not in ga.canonical_json()
    assert ga.hash == "a59992817c3a9622676684224c33b633d6bb3fac964fb4039aae5a3a9cdf96b8"  # computed before
    gd = RunSpec("tofu-mini", "tiny-llama", "forget01", "gd", "lora", 4, 0, Hyperparams(), ())
    assert gd.hash == "44fc5fafc6629aa6cee53adaf3e9c5982c65aa8b0261c7b9a073fd80df3ecc15"
    simnpo = RunSpec("tofu-mini", "tiny-llama", "forget01", "simnpo", "lora", 4, 0, Hyperparams(beta=4.5), ())
    recorded = simnpo.to_dict()["hparams"]
    assert recorded["beta"] == 4.5 and recorded["delta"] == 0.0 and recorded["retain_loss"] == "nll"
    assert RunSpec.from_dict(simnpo.to_dict()) == simnpo
    changed = RunSpec("tofu-mini", "tiny-llama", "forget01", "gd", "lora", 4, 0, Hyperparams(retain_loss="kl"), ())
    assert changed.to_dict()["hparams"]["retain_loss"] == "kl"


def test_objective_defaults_and_the_baselines_list():
    from bench.grid import expand

    specs = {s.objective: s.hparams for s in expand("tofu-mini", "simnpo+lora,undial+lora,satimp+lora,ga+lora",
                                                    ranks="4", seeds="0", hparams={"beta": "5"})}
    assert specs["simnpo"].forget_weight == 0.125 and specs["simnpo"].beta == 5.0  # --set wins over defaults
    assert specs["undial"].retain_weight == 0.0
    assert specs["satimp"].forget_weight == 0.1
    assert specs["ga"].forget_weight == 1.0
    assert len(expand_methods("baselines", ("lora",))) == 10
    assert len(expand_methods("all", ("lora", "fila"))) == 24
