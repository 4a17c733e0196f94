from django import forms

from .models import SavedItem


class SavedItemForm(forms.ModelForm):
    class Meta:
        model = SavedItem
        fields = ["name"]
        widgets = {"name": forms.TextInput(attrs={"placeholder": "e.g. Pi T-shirt"})}
