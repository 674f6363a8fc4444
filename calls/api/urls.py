from rest_framework.routers import SimpleRouter

from calls.api.views import CallViewSet, ErasureViewSet

router = SimpleRouter(trailing_slash=False)
router.register("calls", CallViewSet, basename="call")
router.register("erasures", ErasureViewSet, basename="erasure")

urlpatterns = router.urls
