from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.utils import timezone

from tenants.ids import PublicIdField
from tenants.models import TenantOwnedModel


class KnowledgeBase(TenantOwnedModel):
    class Language(models.TextChoices):
        # PostgreSQL text-search configurations; "simple" does no stemming.
        ENGLISH = "english"
        FRENCH = "french"
        GERMAN = "german"
        SPANISH = "spanish"
        PORTUGUESE = "portuguese"
        ITALIAN = "italian"
        DUTCH = "dutch"
        SIMPLE = "simple"

    public_id = PublicIdField("kb")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    language = models.CharField(max_length=16, choices=Language.choices, default=Language.ENGLISH)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="knowledgebase_public_id"),
            models.UniqueConstraint(fields=["tenant", "name"], name="knowledgebase_name"),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="knowledgebase_recent")]

    def __str__(self) -> str:
        return self.name

    @property
    def audit_label(self) -> str:
        return self.name


class Document(TenantOwnedModel):
    public_id = PublicIdField("doc")
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=200)
    filename = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=64)
    size_bytes = models.PositiveIntegerField()
    text = models.TextField()
    chunk_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="document_public_id"),
        ]
        indexes = [
            models.Index(fields=["tenant", "knowledge_base", "-created_at"], name="document_by_kb")
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def audit_label(self) -> str:
        return self.title


class Chunk(TenantOwnedModel):
    """A passage of a document, the unit of search. On PostgreSQL `search_vector` holds its
    text-search vector in the knowledge base's language (GIN-indexed)."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="+")
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()
    text = models.TextField()
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "document", "position"], name="chunk_position"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "knowledge_base"], name="chunk_by_kb")]

    def __str__(self) -> str:
        return f"chunk {self.position}"
