from django.urls import path
from django.views.i18n import set_language

from frontend import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("signup/", views.signup, name="signup"),
    path("crew/", views.crew, name="crew"),
    path("er/", views.er, name="er"),
    path("sw.js", views.service_worker, name="service_worker"),
    path("manifest.webmanifest", views.manifest, name="manifest"),
    # Django's language switch: POST language=ko|en (and next=<path>) sets the language cookie.
    path("i18n/setlang/", set_language, name="set_language"),
]
