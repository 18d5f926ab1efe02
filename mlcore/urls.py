from django.urls import path

from . import views

page_patterns = [
    path("", views.home, name="home"),
]

api_patterns: list = []
