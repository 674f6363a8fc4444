import pytest
from django.apps import apps

from tests import factories

PROJECT_APPS = {"tenants", "agents", "calls", "workers", "billing"}


def test_every_model_has_a_factory() -> None:
    covered = {
        factory._meta.model
        for factory in vars(factories).values()
        if isinstance(factory, type)
        and hasattr(factory, "_meta")
        and getattr(factory._meta, "model", None)
    }
    models = {m for m in apps.get_models() if m._meta.app_label in PROJECT_APPS}
    missing = sorted(m.__name__ for m in models - covered)
    assert not missing, f"add factories for: {missing}"


@pytest.mark.django_db
def test_factories_build_valid_rows() -> None:
    for factory in vars(factories).values():
        if (
            isinstance(factory, type)
            and issubclass(factory, factories.DjangoModelFactory)
            and not factory._meta.abstract
        ):
            instance = factory()
            instance.full_clean(exclude=["password"])
