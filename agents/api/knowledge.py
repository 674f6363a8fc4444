from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from agents.models import Chunk, Document, KnowledgeBase
from agents.selectors import knowledge_search
from agents.services import knowledge as services
from tenants.api.base import TenantViewSet
from tenants.api.pagination import CursorPagination
from tenants.errors import InvalidInput


class KnowledgeBaseSerializer(serializers.ModelSerializer[KnowledgeBase]):
    id = serializers.CharField(source="public_id", read_only=True)

    class Meta:
        model = KnowledgeBase
        fields = ["id", "name", "description", "language", "created_at", "updated_at"]


class KnowledgeBaseInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    language = serializers.ChoiceField(choices=KnowledgeBase.Language.choices, default="english")


class KnowledgeBaseUpdateInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class DocumentSerializer(serializers.ModelSerializer[Document]):
    id = serializers.CharField(source="public_id", read_only=True)
    knowledge_base = serializers.CharField(source="knowledge_base.public_id", read_only=True)

    class Meta:
        model = Document
        fields = [
            "id",
            "knowledge_base",
            "title",
            "filename",
            "content_type",
            "size_bytes",
            "chunk_count",
            "created_at",
        ]


class DocumentUpload(serializers.Serializer[Any]):
    """Either a file (multipart/form-data) or the text itself (JSON)."""

    file = serializers.FileField(required=False)
    title = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    content = serializers.CharField(
        required=False, trim_whitespace=False, help_text="The text, instead of a file"
    )
    content_type = serializers.ChoiceField(
        choices=["text/plain", "text/markdown", "text/html"], required=False, default="text/plain"
    )


class ChunkPagination(CursorPagination):
    ordering = ("position",)


class ChunkSerializer(serializers.ModelSerializer[Chunk]):
    class Meta:
        model = Chunk
        fields = ["position", "text"]


class SearchInput(serializers.Serializer[Any]):
    query = serializers.CharField(max_length=500)
    limit = serializers.IntegerField(min_value=1, max_value=20, default=5)


class PassageSerializer(serializers.Serializer[Any]):
    document = serializers.CharField(source="document_id")
    title = serializers.CharField(source="document_title")
    text = serializers.CharField()
    rank = serializers.FloatField()


class KnowledgeBaseViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet
):
    """Documents an agent can search during calls (attach the knowledge base to a version and give
    it a search_knowledge tool)."""

    model = KnowledgeBase
    permission_family = "knowledge"
    serializer_class = KnowledgeBaseSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    action_permissions = {"search": "knowledge:read"}

    @extend_schema(request=KnowledgeBaseInput, responses={201: KnowledgeBaseSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = KnowledgeBaseInput(data=request.data)
        data.is_valid(raise_exception=True)
        kb = services.knowledge_base_create(
            tenant=self.tenant, actor=self.actor, **data.validated_data
        )
        return Response(KnowledgeBaseSerializer(kb).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=KnowledgeBaseUpdateInput, responses=KnowledgeBaseSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = KnowledgeBaseUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        kb = services.knowledge_base_update(
            knowledge_base=self.get_object(), actor=self.actor, **data.validated_data
        )
        return Response(KnowledgeBaseSerializer(kb).data)

    def perform_destroy(self, instance: KnowledgeBase) -> None:
        services.knowledge_base_delete(knowledge_base=instance, actor=self.actor)

    @extend_schema(responses=DocumentSerializer(many=True))
    @action(detail=True, methods=["get"], parser_classes=[MultiPartParser, JSONParser])
    def documents(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        kb = self.get_object()
        documents = (
            Document.objects.for_tenant(self.tenant)
            .filter(knowledge_base=kb)
            .select_related("knowledge_base")
        )
        page = self.paginate_queryset(documents)
        return self.get_paginated_response(DocumentSerializer(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": DocumentUpload, "application/json": DocumentUpload},
        responses={201: DocumentSerializer},
    )
    @documents.mapping.post
    def upload(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Add a document: text, Markdown, HTML or PDF. It is split into passages and indexed."""
        data = DocumentUpload(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data.get("file")
        if upload is not None:
            raw, filename, content_type = (
                upload.read(),
                upload.name or "",
                upload.content_type or "",
            )
        elif "content" in data.validated_data:
            raw = data.validated_data["content"].encode()
            filename, content_type = "", data.validated_data["content_type"]
        else:
            raise InvalidInput.field("file", "Send a file, or the text as content.")
        document = services.document_add(
            knowledge_base=self.get_object(),
            actor=self.actor,
            title=data.validated_data["title"],
            filename=filename,
            content_type=content_type,
            raw=raw,
        )
        return Response(DocumentSerializer(document).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=SearchInput, responses=PassageSerializer(many=True))
    @action(detail=True, methods=["post"], pagination_class=None)
    def search(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The passages a search_knowledge tool would return for this query."""
        data = SearchInput(data=request.data)
        data.is_valid(raise_exception=True)
        passages = knowledge_search(
            tenant=self.tenant, knowledge_bases=[self.get_object()], **data.validated_data
        )
        return Response(PassageSerializer(passages, many=True).data)


class DocumentViewSet(mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet):
    model = Document
    permission_family = "knowledge"
    serializer_class = DocumentSerializer

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("knowledge_base")

    def perform_destroy(self, instance: Document) -> None:
        services.document_delete(document=instance, actor=self.actor)

    @extend_schema(responses=ChunkSerializer(many=True))
    @action(detail=True, methods=["get"])
    def chunks(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The passages the document was split into, in order."""
        document = self.get_object()
        chunks = Chunk.objects.for_tenant(self.tenant).filter(document=document)
        paginator = ChunkPagination()
        page = paginator.paginate_queryset(chunks, request, view=self)
        return paginator.get_paginated_response(ChunkSerializer(page, many=True).data)
