"""POST /predict/ {"rows": [{column: value}]} -> {"predictions": [...]}: scikit-learn's predict on
a StandardScaler + LogisticRegression trained on breast_cancer when the worker starts."""

import numpy as np
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

_data = load_breast_cancer()
FEATURES = [str(name) for name in _data.feature_names]
LABELS = np.array(["malignant", "benign"], dtype=object)  # target 0, 1 as in sklearn's data
MODEL = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(_data.data, _data.target)


class PredictView(APIView):
    def post(self, request):
        matrix = np.array([[row[name] for name in FEATURES] for row in request.data["rows"]], dtype=float)
        return Response({"predictions": LABELS[MODEL.predict(matrix)].tolist()})


urlpatterns = [path("predict/", PredictView.as_view())]
