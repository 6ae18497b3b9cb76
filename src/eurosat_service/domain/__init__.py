"""The problem's language: land-cover classes, predictions, model cards, splits and the ports.

Plain Python only (pydantic for value objects): nothing here imports torch, boto3 or fastapi.
"""
