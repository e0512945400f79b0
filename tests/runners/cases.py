"""Scoring requests shared by the runner tests: different lengths, one straddling boundary."""

from benchmark.runners.base import ScoreRequest

REQUESTS = [
    ScoreRequest("Rate each statement from 1 to 5. I talk a lot. <<", "3>>"),
    ScoreRequest("You choose <<", "A>>"),
    ScoreRequest("Round 1.1: you press <<F>> and get 1 points. Round 1.2: you press <<", "J>>"),
    ScoreRequest("The capital of France is", " Paris"),
    # "ta" + "lk" is read as one token " talk", which straddles the boundary.
    ScoreRequest("Rate each statement. I ta", "lk a lot. <<"),
    ScoreRequest("Gamble A: 10 points with probability 50%. You choose <<", "B>>."),
]


LIKERT_PROMPT = "Rate each statement from 1 to 5. I worry. <<"
LIKERT = ["1", "2", "3", "4", "5"]


def first_token_distribution(model_dir, prompt: str, options: list[str]) -> dict[str, float]:
    """The softmax of the next token after ``prompt``, restricted to single-token options.

    Written without the runners: the tokenizer and one forward pass of transformers. Each
    option must be one token that the tokenizer keeps apart from the prompt.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True).eval()
    context = tokenizer(prompt)["input_ids"]
    ids = []
    for option in options:
        full = tokenizer(prompt + option)["input_ids"]
        assert full[: len(context)] == context and len(full) == len(context) + 1, option
        ids.append(full[-1])
    with torch.no_grad():
        logits = model(torch.tensor([context])).logits[0, -1].double()
    probs = torch.softmax(logits[ids], dim=0)
    return dict(zip(options, probs.tolist(), strict=True))
