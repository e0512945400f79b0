"""The form that queues a model run (admin and API share its validation through services)."""

from django import forms

from benchmark.models import HumanDataset, ModelEndpoint, RunMode, ScoringMode, TaskVersion


class QueueRunForm(forms.Form):
    """Everything a researcher picks to queue a run."""

    endpoint = forms.ModelChoiceField(queryset=ModelEndpoint.objects.all())
    task_version = forms.ModelChoiceField(
        queryset=TaskVersion.objects.select_related("task").order_by("task__slug", "-number")
    )
    mode = forms.ChoiceField(choices=RunMode.choices, initial=RunMode.PARTICIPANT)
    scoring_mode = forms.ChoiceField(
        choices=[
            ("", "Best available (exact when the model gives log-probabilities)"),
            *ScoringMode.choices,
        ],
        required=False,
    )
    samples = forms.IntegerField(
        min_value=1,
        max_value=10_000,
        initial=1,
        help_text="samples per item (sampled scoring), or sessions played (sequential tasks)",
    )
    dataset = forms.ModelChoiceField(
        queryset=HumanDataset.objects.all(),
        required=False,
        help_text="human transcripts (likelihood) or profiles (predict individual)",
    )
    prompt_variant = forms.ChoiceField(
        choices=[("neutral", "Neutral"), ("human", "Respond as a typical human")],
        initial="neutral",
    )
    with_profile = forms.BooleanField(required=False, help_text="prepend participant profiles")
    temperature = forms.FloatField(required=False, min_value=0, max_value=2)
    seed = forms.IntegerField(initial=0, min_value=0)
    budget_usd = forms.DecimalField(
        required=False, min_value=0, decimal_places=4, help_text="pause the run at this cost"
    )
    max_trials = forms.IntegerField(
        required=False, min_value=1, help_text="sequential tasks: play only the first N trials"
    )
    max_participants = forms.IntegerField(required=False, min_value=1)
    batch_size = forms.IntegerField(initial=10, min_value=1, max_value=1000)

    def service_kwargs(self) -> dict:
        """The cleaned data as keyword arguments of `queue_run`."""
        data = self.cleaned_data
        return {
            "endpoint": data["endpoint"],
            "task_version": data["task_version"],
            "mode": data["mode"],
            "scoring_mode": data["scoring_mode"] or None,
            "samples": data["samples"],
            "dataset": data["dataset"],
            "max_trials": data["max_trials"],
            "batch_size": data["batch_size"],
            "max_participants": data["max_participants"],
        }

    def queue_kwargs(self) -> dict:
        """`service_kwargs` plus what only queueing needs."""
        data = self.cleaned_data
        params = {} if data["temperature"] is None else {"temperature": data["temperature"]}
        return {
            **self.service_kwargs(),
            "prompt_variant": data["prompt_variant"],
            "with_profile": data["with_profile"],
            "params": params,
            "seed": data["seed"],
            "budget_usd": data["budget_usd"],
        }
