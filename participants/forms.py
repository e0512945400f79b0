"""The demographics form (every field optional: a participant may skip any question)."""

from django import forms

EDUCATION = [
    ("", "Prefer not to say"),
    ("none", "No formal qualification"),
    ("secondary", "Secondary school"),
    ("vocational", "Vocational training"),
    ("bachelor", "Bachelor's degree"),
    ("master", "Master's degree"),
    ("doctorate", "Doctorate"),
]
GENDER = [
    ("", "Prefer not to say"),
    ("female", "Female"),
    ("male", "Male"),
    ("non-binary", "Non-binary"),
    ("other", "Other"),
]


class DemographicsForm(forms.Form):
    """Age, gender, nationality and education, in Psych-201's profile vocabulary."""

    age = forms.IntegerField(min_value=16, max_value=120, required=False)
    gender = forms.ChoiceField(choices=GENDER, required=False)
    nationality = forms.CharField(max_length=100, required=False)
    education = forms.ChoiceField(choices=EDUCATION, required=False)
