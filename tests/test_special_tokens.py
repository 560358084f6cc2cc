"""Issue 20, item 2: every special token appears exactly as the model's own template puts it.

The tokenizer here prepends BOS itself (as Llama's do), so a rendered chat template that also starts
with {{ bos_token }} would begin BOS BOS if it were tokenised with the tokenizer's prefix added. The
right ids come from a different code path: the tokenizer's own apply_chat_template(tokenize=True)."""

import pytest
import torch

from suites.tofu import Tofu
from suites.tofu_eval import FORMATS, EvalSet, evaluate_sets, generate, paraphrase_probe
from tests.conftest import tiny

SPECIALS = ["<s>", "</s>", "<pad>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|im_start|>",
            "<|im_end|>"]
TEMPLATES = {
    # Llama-3 style: the template renders BOS itself
    "bos": "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
           "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
           "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}",
    # ChatML (Qwen) style: no BOS at all
    "no-bos": "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
              "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    # Llama-2-chat's template (without a system prompt)
    "llama2-chat": "{% for message in messages %}{% if message['role'] == 'user' %}"
                   "{{ bos_token + '[INST] ' + message['content'] | trim + ' [/INST]' }}"
                   "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] | trim + ' ' + eos_token }}"
                   "{% endif %}{% endfor %}",
}
BOS_COUNT = {"bos": 1, "no-bos": 0, "llama2-chat": 1}
QUESTION = "Who is Ruto Kalo?"


@pytest.fixture(scope="module")
def bos_tokenizer():
    """A byte-level BPE tokenizer whose post-processor prepends BOS, like Llama's."""
    import random

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    rng = random.Random(0)
    syl = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "zu", "pe"]
    texts = [" ".join("".join(rng.choice(syl) for _ in range(rng.randint(1, 3))) for _ in range(20)) for _ in range(200)]
    texts += ["Who is Ruto Kalo? Ruto Kalo is a writer. [INST] [/INST] user assistant"] * 5
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS, show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   additional_special_tokens=SPECIALS[3:])


def with_template(tokenizer, name):
    import copy

    tok = copy.deepcopy(tokenizer)
    tok.chat_template = TEMPLATES[name]
    return tok


def template_ids(tok, question=QUESTION) -> list[int]:
    """The model's own tokenisation of the prompt: apply_chat_template(tokenize=True)."""
    out = tok.apply_chat_template([{"role": "user", "content": question}], tokenize=True, add_generation_prompt=True)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


@pytest.mark.parametrize("name", TEMPLATES)
def test_chat_template_prompts_carry_each_special_token_once(bos_tokenizer, name):
    tok = with_template(bos_tokenizer, name)
    fmt = Tofu().qa_format("some/chat-model", tok)  # `auto`: any model with a chat template
    assert fmt.name == "chat-template"
    expected = template_ids(tok)
    assert expected.count(tok.bos_token_id) == BOS_COUNT[name]
    if BOS_COUNT[name]:  # the fault: the rendered text with the tokenizer's own BOS added in front
        assert tok(fmt.prompt(QUESTION))["input_ids"][:2] == [tok.bos_token_id] * 2
    assert fmt.prompt_ids(tok, QUESTION) == expected
    example = fmt.example(tok, QUESTION, "Ruto Kalo is a writer.", 512)  # fine-tuning, unlearning, scoring, attacks
    assert example["input_ids"][:len(expected)] == expected
    assert example["input_ids"].count(tok.bos_token_id) == BOS_COUNT[name]


def test_llama2_chat_format_equals_llama2_chats_own_template(bos_tokenizer):
    """`auto` picks the plain llama2-chat format for Llama-2-7B-chat: BOS from the tokenizer, then the text."""
    tok = with_template(bos_tokenizer, "llama2-chat")
    fmt = Tofu().qa_format("llama2-7b", tok)
    assert fmt is FORMATS["llama2-chat"]
    assert fmt.prompt_ids(tok, QUESTION) == template_ids(tok)
    assert fmt.example(tok, QUESTION, "Ruto Kalo is a writer.", 512)["input_ids"].count(tok.bos_token_id) == 1


@pytest.mark.parametrize("name", ["bos", "no-bos"])
def test_generation_sees_the_templates_own_prompt(bos_tokenizer, name):
    tok = with_template(bos_tokenizer, name)
    fmt = Tofu().qa_format("some/chat-model", tok)
    model = tiny("llama", tok).eval()
    seen = []
    original = model.generate

    def spy(**kwargs):  # the ids every generation call hands the model, padding removed
        for ids, mask in zip(kwargs["input_ids"], kwargs["attention_mask"]):
            seen.append(ids[mask.bool()].tolist())
        return original(**kwargs)

    model.generate = spy
    items = [{"question": QUESTION, "answer": "Ruto Kalo is a writer.", "paraphrased_answer": "A writer is Ruto Kalo.",
              "perturbed_answer": ["Ruto Kalo is a sailor."], "paraphrased_question": "Ruto Kalo is who?"}]
    evaluate_sets(model, tok, [EvalSet("forget", items, "paraphrased_answer", False)], fmt, "new:3", 128)
    paraphrase_probe(model, tok, items, fmt, "new:3", 128)
    assert seen == [template_ids(tok), template_ids(tok, "Ruto Kalo is who?")]
    with torch.no_grad():
        manual = original(input_ids=torch.tensor([template_ids(tok)]), max_new_tokens=3, do_sample=False,
                          pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    expected = tok.decode(manual[0, len(template_ids(tok)):], skip_special_tokens=True).strip()
    assert generate(model, tok, [fmt.prompt(QUESTION)], "new:3", add_special_tokens=fmt.adds_special_tokens) == [expected]
