"""Forms of the benchmark admin."""

from django import forms
from django.conf import settings

from benchmark.models import Task, TaskVersion


class Psych201UploadForm(forms.Form):
    """A Psych-201 file (.jsonl, .jsonl.gz or .zip) and where it belongs."""

    file = forms.FileField(help_text="Psych-201 JSONL, optionally gzipped or zipped")
    slug = forms.SlugField(required=False, help_text="default: from the file name")
    name = forms.CharField(required=False, max_length=200, help_text="default: the experiment")
    task = forms.ModelChoiceField(queryset=Task.objects.all(), required=False)

    def __init__(self, *args, **kwargs):
        """Name the upload limit in the file field's help."""
        super().__init__(*args, **kwargs)
        limit_mb = settings.PSYCH201_MAX_UPLOAD_BYTES / 1024 / 1024
        self.fields["file"].help_text += f" (at most {limit_mb:,.0f} MB)"

    def clean_file(self):
        """Refuse files over the upload limit before reading them."""
        upload = self.cleaned_data["file"]
        limit = settings.PSYCH201_MAX_UPLOAD_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                f"The file has {upload.size:,} bytes; the limit is {limit:,} "
                "(PSYCH201_MAX_UPLOAD_BYTES)."
            )
        return upload


class SupersedeForm(forms.Form):
    """Why a task version must not be used any more, and what replaces it."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        max_length=2000,
        help_text="shown next to the version wherever it appears (admin, API, reports)",
    )
    superseded_by = forms.ModelChoiceField(
        queryset=TaskVersion.objects.none(), required=False, help_text="the version to use instead"
    )

    def __init__(self, *args, version: TaskVersion, **kwargs):
        """Offer the other versions of the same task as replacements."""
        super().__init__(*args, **kwargs)
        others = TaskVersion.objects.filter(task=version.task).exclude(pk=version.pk)
        self.fields["superseded_by"].queryset = others.defer("spec").order_by("-number")

    def clean_reason(self):
        """A reason that says something."""
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why the version is superseded.")
        return reason
