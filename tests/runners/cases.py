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
