from django.urls import path
from django.views.i18n import set_language

from frontend import console, views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("signup/", views.signup, name="signup"),
    path("crew/", views.crew, name="crew"),
    path("er/", views.er, name="er"),
    path("console/", console.live, name="console"),
    path("console/accounts/", console.accounts, name="console_accounts"),
    path(
        "console/accounts/<int:user_id>/<str:action>/",
        console.account_action,
        name="console_account_action",
    ),
    path("console/audit/", console.audit, name="console_audit"),
    path(
        "console/reservations/<int:reservation_id>/",
        console.reservation,
        name="console_reservation",
    ),
    path("sw.js", views.service_worker, name="service_worker"),
    path("manifest.webmanifest", views.manifest, name="manifest"),
    # Django's language switch: POST language=ko|en (and next=<path>) sets the language cookie.
    path("i18n/setlang/", set_language, name="set_language"),
]
