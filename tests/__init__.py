"""Tests of facemarket."""
