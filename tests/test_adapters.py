import pytest
import torch

from bench.errors import BenchError
from methods import ADAPTERS, AdapterInputs, fila, parse_method
from methods.lora import target_linear_names
from methods.losses import mean_nll
from tests.conftest import tiny


def row_weights_from(batches):
    return lambda model, names: fila.row_weights(*fila.fisher_diagonals(model, names, batches))


def logits(model, batch):
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


@pytest.mark.parametrize("arch", ["gpt-neo", "llama", "phi"])
def test_fila_leaves_the_logits_unchanged_at_initialisation(arch, tokenizer, batch):
    model = tiny(arch, tokenizer).eval()
    before = logits(model, batch)
    retain = {k: v.flip(0) for k, v in batch.items()}
    adapted = ADAPTERS["fila"].apply(model, AdapterInputs(rank=4, fisher_row_weights=row_weights_from([(batch, retain)])))
    adapted.eval()
    assert (logits(adapted, batch) - before).abs().max().item() <= 1e-5
    trainable = {n for n, p in adapted.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    nonzero = [p.abs().sum().item() > 0 for n, p in adapted.named_parameters() if "lora_B" in n]
    assert all(nonzero)  # unlike vanilla LoRA, B starts non-zero


def test_only_a_and_b_receive_gradients(tokenizer, batch):
    adapted = ADAPTERS["fila"].apply(tiny("llama", tokenizer),
                                     AdapterInputs(rank=2, fisher_row_weights=row_weights_from([(batch, batch)])))
    adapted.train()
    mean_nll(adapted(input_ids=batch["input_ids"]).logits, batch["labels"]).backward()
    for name, p in adapted.named_parameters():
        assert (p.grad is not None) == ("lora_" in name), name


def test_row_weights_match_a_fisher_built_by_hand(tokenizer, batch):
    model = tiny("gpt-neo", tokenizer)
    names = target_linear_names(model)
    halves = [{k: v[:2] for k, v in batch.items()}, {k: v[2:] for k, v in batch.items()}]
    retain = [{k: v.flip(0) for k, v in h.items()} for h in halves]
    got = fila.row_weights(*fila.fisher_diagonals(model, names, zip(halves, retain)))
    name = names[0]
    weight = dict(model.named_modules())[name].weight

    def by_hand(batches):
        total, tokens = torch.zeros_like(weight), 0
        for b in batches:
            model.zero_grad()
            mean_nll(model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits, b["labels"]).backward()
            n = int((b["labels"][:, 1:] != -100).sum())
            total += weight.grad ** 2 * n
            tokens += n
        return total / tokens

    expected = (by_hand(halves) / (by_hand(retain) + 1e-5)).sum(dim=1).sqrt()
    assert torch.allclose(got[name], expected, rtol=1e-4)


def test_fila_factors_reconstruct_the_weighted_rank_r_approximation():
    torch.manual_seed(0)
    W, w = torch.randn(12, 8), torch.rand(12) + 0.5
    A, B = fila.factors(W, w, rank=8, scale=2.0)  # full rank: exact
    assert A.shape == (8, 8) and B.shape == (12, 8)
    assert torch.allclose(2.0 * B @ A, W * (w / (w + fila.EPS))[:, None], atol=1e-4)


def test_rank_errors(tokenizer):
    with pytest.raises(BenchError, match="larger than layer"):
        ADAPTERS["lora"].apply(tiny("llama", tokenizer), AdapterInputs(rank=64))
    with pytest.raises(BenchError, match="bad LoRA rank 0"):
        ADAPTERS["lora"].apply(tiny("llama", tokenizer), AdapterInputs(rank=0))


def test_a_model_without_target_linear_layers():
    class Bag(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(10, 4)
            self.head = torch.nn.Linear(4, 10)

        def get_output_embeddings(self):
            return self.head

    with pytest.raises(BenchError, match="no target nn.Linear layer found in Bag"):
        target_linear_names(Bag())


def test_method_names():
    assert parse_method("ihl+fila") == ("ihl", "fila")
    assert parse_method("npo") == ("npo", "full")
    with pytest.raises(BenchError, match="unknown adapter 'filla'; did you mean 'fila'"):
        parse_method("ihl+filla")
    with pytest.raises(BenchError, match="unknown objective 'ihll'; did you mean 'ihl'"):
        parse_method("ihll")


def test_a_fila_model_saved_and_loaded_again_gives_the_same_logits(tokenizer, batch, tmp_path):
    from transformers import AutoModelForCausalLM

    from bench.checkpoint import export_model

    model = tiny("llama", tokenizer)
    original = {n: t.clone() for n, t in model.state_dict().items()}
    adapted = ADAPTERS["fila"].apply(model, AdapterInputs(rank=4, fisher_row_weights=row_weights_from([(batch, batch)])))
    with torch.no_grad():
        for p in adapted.parameters():
            if p.requires_grad:
                p.add_(0.03)  # as if trained
    adapted.eval()
    expected = logits(adapted, batch)
    reloaded = AutoModelForCausalLM.from_pretrained(export_model(adapted, tokenizer, tmp_path / "model")).eval()
    assert (logits(reloaded, batch) - expected).abs().max().item() <= 1e-5
    # the official code's pitfall: the trained adapter on top of the *original* W is another model
    wrong = tiny("llama", tokenizer)
    wrong.load_state_dict(original)
    assert (logits(wrong, batch) - expected).abs().max().item() > 1e-3
