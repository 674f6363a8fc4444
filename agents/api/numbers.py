from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from agents.api.common import resolve
from agents.models import Agent, CarrierAccount, PhoneNumber
from agents.services import numbers as services
from tenants.api.base import TenantViewSet
from tenants.api.schema import idempotency_key_parameter
from tenants.errors import InvalidInput


class CarrierAccountSerializer(serializers.ModelSerializer[CarrierAccount]):
    id = serializers.CharField(source="public_id", read_only=True)
    secrets_set = serializers.SerializerMethodField()

    class Meta:
        model = CarrierAccount
        fields = ["id", "kind", "name", "config", "secrets_set", "created_at", "updated_at"]

    def get_secrets_set(self, account: CarrierAccount) -> list[str]:
        return sorted(k for k, v in account.secrets.items() if v)


class CarrierAccountInput(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=CarrierAccount.Kind.choices)
    name = serializers.CharField(max_length=100)
    config = serializers.DictField(default=dict, help_text='Twilio: {"account_sid": "AC…"}')
    secrets = serializers.DictField(
        default=dict, write_only=True, help_text='Twilio: {"auth_token": "…"}'
    )


class CarrierAccountUpdateInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100, required=False)
    config = serializers.DictField(required=False)
    secrets = serializers.DictField(required=False, write_only=True)


class CarrierAccountViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet
):
    """Where numbers come from: a Twilio account, or the offline sandbox."""

    model = CarrierAccount
    permission_family = "numbers"
    serializer_class = CarrierAccountSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(
        request=CarrierAccountInput,
        responses={201: CarrierAccountSerializer},
        examples=[
            OpenApiExample(
                "Sandbox", request_only=True, value={"kind": "sandbox", "name": "Sandbox"}
            ),
            OpenApiExample(
                "Twilio",
                request_only=True,
                value={
                    "kind": "twilio",
                    "name": "Twilio",
                    "config": {"account_sid": "AC…"},
                    "secrets": {"auth_token": "…"},
                },
            ),
        ],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = CarrierAccountInput(data=request.data)
        data.is_valid(raise_exception=True)
        account = services.carrier_account_create(
            tenant=self.tenant, actor=self.actor, **data.validated_data
        )
        return Response(CarrierAccountSerializer(account).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CarrierAccountUpdateInput, responses=CarrierAccountSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = CarrierAccountUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        account = services.carrier_account_update(
            account=self.get_object(), actor=self.actor, **data.validated_data
        )
        return Response(CarrierAccountSerializer(account).data)

    def perform_destroy(self, instance: CarrierAccount) -> None:
        services.carrier_account_delete(account=instance, actor=self.actor)


class PhoneNumberSerializer(serializers.ModelSerializer[PhoneNumber]):
    id = serializers.CharField(source="public_id", read_only=True)
    phone_number = serializers.CharField(source="e164", read_only=True)
    carrier_account = serializers.CharField(source="carrier_account.public_id", read_only=True)
    carrier = serializers.CharField(source="carrier_account.kind", read_only=True)
    agent = serializers.CharField(
        source="agent.public_id", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = PhoneNumber
        fields = [
            "id",
            "phone_number",
            "friendly_name",
            "carrier",
            "carrier_account",
            "carrier_sid",
            "capabilities",
            "status",
            "agent",
            "created_at",
            "released_at",
        ]


class AvailableNumberSerializer(serializers.Serializer[Any]):
    phone_number = serializers.CharField(source="e164")
    friendly_name = serializers.CharField()
    locality = serializers.CharField()
    region = serializers.CharField()
    country = serializers.CharField()
    capabilities = serializers.DictField(child=serializers.BooleanField())


class PurchaseInput(serializers.Serializer[Any]):
    carrier_account = serializers.CharField(help_text="car_…")
    phone_number = serializers.CharField(help_text="E.164, from a search")
    friendly_name = serializers.CharField(required=False, allow_blank=True, default="")
    agent = serializers.CharField(required=False, allow_null=True, help_text="agt_… to answer it")


class ImportInput(serializers.Serializer[Any]):
    carrier_account = serializers.CharField(help_text="car_…")
    phone_number = serializers.CharField(help_text="E.164 of a number the carrier account owns")
    agent = serializers.CharField(required=False, allow_null=True)


class PhoneNumberUpdateInput(serializers.Serializer[Any]):
    agent = serializers.CharField(
        required=False, allow_null=True, help_text="agt_…, or null to unassign"
    )
    friendly_name = serializers.CharField(required=False, allow_blank=True, max_length=100)


class PhoneNumberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Phone numbers: search, buy, import, assign to an agent, release."""

    model = PhoneNumber
    permission_family = "numbers"
    serializer_class = PhoneNumberSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]
    action_permissions = {"available": "numbers:write"}

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("carrier_account", "agent")

    def _agent(self, value: Any) -> Agent | None:
        return None if value is None else resolve(Agent, self.tenant, value, "agent")

    @extend_schema(
        parameters=[
            OpenApiParameter("carrier_account", str, required=True, description="car_…"),
            OpenApiParameter("country", str, default="US"),
            OpenApiParameter("area_code", str),
            OpenApiParameter("contains", str, description="Digits the number contains"),
            OpenApiParameter("limit", int, default=20),
        ],
        responses=AvailableNumberSerializer(many=True),
    )
    @action(detail=False, methods=["get"])
    def available(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Numbers the carrier can sell now."""
        query = request.query_params
        account = resolve(
            CarrierAccount, self.tenant, query.get("carrier_account"), "carrier_account"
        )
        try:
            limit = int(query.get("limit", 20))
        except ValueError:
            raise InvalidInput.field("limit", "A whole number.") from None
        found = services.phone_number_search(
            account=account,
            actor=self.actor,
            country=query.get("country", "US").upper(),
            area_code=query.get("area_code", ""),
            contains=query.get("contains", ""),
            limit=limit,
        )
        return Response(AvailableNumberSerializer(found, many=True).data)

    @extend_schema(
        request=PurchaseInput,
        responses={201: PhoneNumberSerializer},
        parameters=[idempotency_key_parameter(required=True)],
        description="Buy a number. Requires an Idempotency-Key header: a retried purchase "
        "returns the "
        "first result instead of buying again.",
        examples=[
            OpenApiExample(
                "Buy a sandbox number",
                request_only=True,
                value={
                    "carrier_account": "car_…",
                    "phone_number": "+14155550123",
                    "agent": "agt_…",
                },
            )
        ],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if "Idempotency-Key" not in request.headers:
            raise InvalidInput.field(
                "Idempotency-Key",
                "Buying a number needs an Idempotency-Key header, "
                "so that a retry cannot buy twice.",
                code="idempotency_key_required",
            )
        data = PurchaseInput(data=request.data)
        data.is_valid(raise_exception=True)
        number = services.phone_number_purchase(
            tenant=self.tenant,
            actor=self.actor,
            account=resolve(
                CarrierAccount,
                self.tenant,
                data.validated_data["carrier_account"],
                "carrier_account",
            ),
            e164=data.validated_data["phone_number"],
            friendly_name=data.validated_data["friendly_name"],
            agent=self._agent(data.validated_data.get("agent")),
        )
        return Response(PhoneNumberSerializer(number).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ImportInput, responses={201: PhoneNumberSerializer})
    @action(detail=False, methods=["post"], url_path="import", url_name="import")
    def import_(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Bring a number the carrier account already owns; its calls are pointed here."""
        data = ImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        number = services.phone_number_import(
            tenant=self.tenant,
            actor=self.actor,
            account=resolve(
                CarrierAccount,
                self.tenant,
                data.validated_data["carrier_account"],
                "carrier_account",
            ),
            e164=data.validated_data["phone_number"],
            agent=self._agent(data.validated_data.get("agent")),
        )
        return Response(PhoneNumberSerializer(number).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PhoneNumberUpdateInput, responses=PhoneNumberSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = PhoneNumberUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        if "agent" in fields:
            fields["agent"] = self._agent(fields["agent"])
        number = services.phone_number_update(number=self.get_object(), actor=self.actor, **fields)
        return Response(PhoneNumberSerializer(number).data)

    @extend_schema(request=None, responses=PhoneNumberSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Give the number back to the carrier; calls to it no longer reach this account."""
        number = services.phone_number_release(number=self.get_object(), actor=self.actor)
        return Response(PhoneNumberSerializer(number).data)
