from django.urls import path

from .apis import datasets as datasets_apis
from .apis import jobs as jobs_apis
from .apis import models as models_apis
from .apis import predictions as predictions_apis
from .apis import schedules as schedules_apis
from .apis import searches as searches_apis
from .views import datasets as dataset_views
from .views import home as home_views
from .views import jobs as job_views
from .views import models as model_views
from .views import predictions as prediction_views
from .views import schedules as schedule_views
from .views import searches as search_views

page_patterns = [
    path("", home_views.home, name="home"),
    path("datasets/", dataset_views.datasets, name="datasets"),
    path("datasets/upload/", dataset_views.dataset_upload, name="dataset_upload"),
    path("datasets/<int:dataset_id>/", dataset_views.dataset_detail, name="dataset_detail"),
    path("datasets/<int:dataset_id>/versions/new/", dataset_views.dataset_version_upload,
         name="dataset_version_upload"),
    path("datasets/<int:dataset_id>/relationships/", dataset_views.dataset_relationships,
         name="dataset_relationships"),
    path("datasets/<int:dataset_id>/download/", dataset_views.dataset_download, name="dataset_download"),
    path("datasets/<int:dataset_id>/share/", dataset_views.dataset_share, name="dataset_share"),
    path("datasets/<int:dataset_id>/unshare/", dataset_views.dataset_unshare, name="dataset_unshare"),
    path("datasets/<int:dataset_id>/delete/", dataset_views.dataset_delete, name="dataset_delete"),
    path("datasets/<int:dataset_id>/search/", search_views.search_start_page, name="search_start"),
    path("searches/<int:search_id>/", search_views.search_detail, name="search_detail"),
    path("searches/<int:search_id>/board/", search_views.search_board, name="search_board"),
    path("searches/<int:search_id>/cancel/", search_views.search_cancel, name="search_cancel"),
    path("jobs/", job_views.jobs_page, name="jobs"),
    path("jobs/<int:job_id>/", job_views.job_detail, name="job_detail"),
    path("jobs/<int:job_id>/status/", job_views.job_status, name="job_status"),
    path("jobs/<int:job_id>/cancel/", job_views.job_cancel, name="job_cancel"),
    path("jobs/<int:job_id>/result/", prediction_views.prediction_download_page, name="prediction_download"),
    path("jobs/<int:job_id>/errors/", prediction_views.prediction_errors_page, name="prediction_errors"),
    path("jobs/<int:job_id>/receipt/", prediction_views.prediction_receipt_page, name="prediction_receipt"),
    path("schedules/", schedule_views.schedules_page, name="schedules"),
    path("schedules/<int:schedule_id>/", schedule_views.schedule_detail, name="schedule_detail"),
    path("schedules/<int:schedule_id>/pause/", schedule_views.schedule_pause, name="schedule_pause"),
    path("schedules/<int:schedule_id>/resume/", schedule_views.schedule_resume, name="schedule_resume"),
    path("schedules/<int:schedule_id>/delete/", schedule_views.schedule_delete, name="schedule_delete"),
    path("predict/", prediction_views.predict, name="predict"),
    path("predict/upload/", prediction_views.predict_upload, name="predict_upload"),
    path("models/", model_views.models_page, name="models"),
    path("models/train/", model_views.train, name="train"),
    path("models/<int:model_id>/", model_views.model_detail, name="model_detail"),
    path("models/<int:model_id>/compare/", model_views.model_compare, name="model_compare"),
    path("models/<int:model_id>/share/", model_views.model_share, name="model_share"),
    path("models/<int:model_id>/delete/", model_views.model_delete, name="model_delete"),
    path("model-versions/<int:version_id>/", model_views.model_version, name="model_version"),
    path("model-versions/<int:version_id>/promote/", model_views.model_version_promote,
         name="model_version_promote"),
    path("model-versions/<int:version_id>/threshold/", model_views.model_version_threshold,
         name="model_version_threshold"),
    path("model-versions/<int:version_id>/delete/", model_views.model_version_delete,
         name="model_version_delete"),
    path("model-versions/<int:version_id>/try/", prediction_views.try_it, name="try_it"),
]

api_patterns = [
    # First: Django tries the patterns in order, and online predictions are the hot path.
    path("models/<int:model_id>/predict/", predictions_apis.ModelPredictApi.as_view(), name="api-model-predict"),
    path("datasets/", datasets_apis.DatasetListApi.as_view(), name="api-datasets"),
    path("datasets/<int:dataset_id>/", datasets_apis.DatasetDetailApi.as_view(), name="api-dataset"),
    path("datasets/<int:dataset_id>/versions/", datasets_apis.DatasetVersionsApi.as_view(),
         name="api-dataset-versions"),
    path("datasets/<int:dataset_id>/preview/", datasets_apis.DatasetPreviewApi.as_view(), name="api-dataset-preview"),
    path("datasets/<int:dataset_id>/download/", datasets_apis.DatasetDownloadApi.as_view(), name="api-dataset-download"),
    path("datasets/<int:dataset_id>/share/", datasets_apis.DatasetShareApi.as_view(), name="api-dataset-share"),
    path("training-jobs/", jobs_apis.TrainingJobCreateApi.as_view(), name="api-training-jobs"),
    path("jobs/", jobs_apis.JobListApi.as_view(), name="api-jobs"),
    path("jobs/<int:job_id>/", jobs_apis.JobDetailApi.as_view(), name="api-job"),
    path("jobs/<int:job_id>/cancel/", jobs_apis.JobCancelApi.as_view(), name="api-job-cancel"),
    path("jobs/<int:job_id>/result/", predictions_apis.JobResultApi.as_view(), name="api-job-result"),
    path("jobs/<int:job_id>/errors/", predictions_apis.JobErrorsApi.as_view(), name="api-job-errors"),
    path("jobs/<int:job_id>/receipt/", predictions_apis.JobReceiptApi.as_view(), name="api-job-receipt"),
    path("searches/", searches_apis.SearchCreateApi.as_view(), name="api-searches"),
    path("searches/<int:search_id>/", searches_apis.SearchDetailApi.as_view(), name="api-search"),
    path("searches/<int:search_id>/cancel/", searches_apis.SearchCancelApi.as_view(), name="api-search-cancel"),
    path("prediction-jobs/", predictions_apis.PredictionJobCreateApi.as_view(), name="api-prediction-jobs"),
    path("schedules/", schedules_apis.ScheduleListApi.as_view(), name="api-schedules"),
    path("schedules/<int:schedule_id>/", schedules_apis.ScheduleDetailApi.as_view(), name="api-schedule"),
    path("schedules/<int:schedule_id>/pause/", schedules_apis.SchedulePauseApi.as_view(), name="api-schedule-pause"),
    path("schedules/<int:schedule_id>/resume/", schedules_apis.ScheduleResumeApi.as_view(),
         name="api-schedule-resume"),
    path("schedules/<int:schedule_id>/runs/", schedules_apis.ScheduleRunsApi.as_view(), name="api-schedule-runs"),
    path("models/", models_apis.ModelListApi.as_view(), name="api-models"),
    path("models/<int:model_id>/", models_apis.ModelDetailApi.as_view(), name="api-model"),
    path("models/<int:model_id>/compare/", model_views.model_compare, name="model_compare"),
    path("models/<int:model_id>/share/", models_apis.ModelShareApi.as_view(), name="api-model-share"),
    path("model-versions/<int:version_id>/", models_apis.ModelVersionDetailApi.as_view(), name="api-model-version"),
    path("model-versions/<int:version_id>/promote/", models_apis.ModelVersionPromoteApi.as_view(),
         name="api-model-version-promote"),
    path("model-versions/<int:version_id>/threshold/", models_apis.ModelVersionThresholdApi.as_view(),
         name="api-model-version-threshold"),
    path("model-versions/<int:version_id>/monitoring/", models_apis.ModelVersionMonitoringApi.as_view(),
         name="api-model-version-monitoring"),
]
