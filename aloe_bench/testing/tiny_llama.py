"""A small random-weight Llama checkpoint with a real byte-level BPE tokenizer and a ChatML template,
written with `save_pretrained` like any hub checkpoint. Nothing is downloaded: the tokenizer is trained
here on the shipped demo personas and prompts. For tests of model-serving code (tests/test_vllm_backend.py)
and for benchmarks/gpu_check.py; its replies are noise, its shapes and formats are real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _corpus() -> list[str]:
    from aloe_bench.datasets.personas import load_persona_set

    texts = []
    for p in load_persona_set("demo").personas:
        texts += [p.profile, p.personality]
    prompts = Path(__file__).resolve().parent.parent / "prompts"
    texts += [f.read_text() for f in sorted(prompts.glob("*.yaml"))]
    return texts


def build_tokenizer(vocab_size: int = 2048) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_corpus(), trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None
    )
    tok.chat_template = CHATML
    return tok


def build_tiny_llama(
    folder: Path,
    *,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    seed: int = 0,
    max_positions: int = 4096,
) -> Path:
    """Write the checkpoint into `folder` (created); returns it."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer()
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=hidden * 4,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        bos_token_id=None,
        eos_token_id=eos,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,  # tied random weights echo the last input token forever
        initializer_range=0.2,  # wide enough that replies vary from token to token
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # a zero output row scores 0, below the best random token, so the model
        for token in SPECIAL:  # never ends a reply at once (it writes until max_new_tokens)
            model.get_output_embeddings().weight[tok.convert_tokens_to_ids(token)] = 0
    model.generation_config = GenerationConfig(
        eos_token_id=eos, pad_token_id=tok.pad_token_id, do_sample=False
    )
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
