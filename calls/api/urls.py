from rest_framework.routers import SimpleRouter

from calls.api.views import CallViewSet

router = SimpleRouter(trailing_slash=False)
router.register("calls", CallViewSet, basename="call")

urlpatterns = router.urls
