"""Forms of the Knowledge pages. They only shape input; agents.services.knowledge checks it."""

from typing import Any

from django import forms

from agents import documents
from agents.models import KnowledgeBase


class KnowledgeBaseForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the documents cover, for the people who maintain them.",
    )
    language = forms.ChoiceField(
        choices=KnowledgeBase.Language.choices,
        initial=KnowledgeBase.Language.ENGLISH,
        help_text="The language the documents are written in, for word stemming in searches. "
        "It cannot change later; simple does no stemming.",
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["language"]


def accepted_files() -> str:
    return ", ".join(documents.EXTENSIONS)


class DocumentUploadForm(forms.Form):
    file = forms.FileField(
        label="Document",
        help_text=f"Text, Markdown, HTML or PDF ({accepted_files()}). It is split into passages "
        "and indexed at once.",
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(documents.EXTENSIONS)}),
    )
    title = forms.CharField(
        required=False,
        max_length=200,
        help_text="Shown with search results; the file's name when empty.",
    )


class SearchForm(forms.Form):
    q = forms.CharField(label="Question", max_length=500, help_text="As a caller would ask it.")
    limit = forms.IntegerField(
        label="Passages", min_value=1, max_value=20, initial=5, required=False
    )

    def limit_value(self) -> int:
        limit = self.cleaned_data.get("limit")
        return 5 if limit is None else int(limit)
