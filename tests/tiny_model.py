"""A tiny random Llama and a tokenizer trained on the fly (tests and benchmarks; no hub)."""

import random
from pathlib import Path

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def corpus(lines: int = 300, seed: int = 0) -> list[str]:
    """Task-like lines with digits, letters and ``<<…>>`` answers (seeded)."""
    rng = random.Random(seed)
    words = ["I talk a lot", "I am quiet", "I like parties", "I worry", "I plan ahead"]
    out = ["0 1 2 3 4 5 6 7 8 9 10 A B C D E F G H I J K L M N O P Q R S T U V W X Y Z % : , ."]
    for i in range(lines):
        kind = i % 4
        if kind == 0:
            out.append(
                f"Rate each statement from 1 to 5. {rng.choice(words)}. <<{rng.randint(1, 5)}>>"
            )
        elif kind == 1:
            a, b = rng.randint(1, 99), rng.randint(1, 99)
            out.append(
                f"Gamble A: {a} points with probability {b}%. You choose <<{rng.choice('AB')}>>."
            )
        elif kind == 2:
            out.append(
                f"Round {i}.{rng.randint(1, 9)}: you press <<{rng.choice('FJ')}>> "
                f"and get {rng.randint(0, 9)} points."
            )
        else:
            out.append(
                f"Interviewer: What is your age? Interviewee: {rng.randint(18, 80)}. "
                f"Option {rng.choice('ABCD')}) is my answer <<{rng.choice('ABCD')}>>"
            )
    return out


def build_tiny_llama(path: Path, *, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """Train the tokenizer, build a seeded random Llama and ``save_pretrained`` both to ``path``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from tokenizers.processors import TemplateProcessing
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=384,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus(seed=seed), trainer)
    bpe.post_processor = TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", bpe.token_to_id("<s>"))]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(path)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    return Path(path)


def build_tiny_gemma3(path: Path, *, window: int, seed: int = 0) -> Path:
    """A seeded random 2-layer Gemma 3 text model (one sliding-window layer, one full).

    It reads with the tiny Llama's tokenizer (trained here too), so that the same texts
    can be scored on both.
    """
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    build_tiny_llama(path, seed=seed)  # the tokenizer; the Llama weights are replaced
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    for weights in Path(path).glob("model*.safetensors"):
        weights.unlink()
    torch.manual_seed(seed)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        sliding_window=window,
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    Gemma3ForCausalLM(config).save_pretrained(path)
    return Path(path)
