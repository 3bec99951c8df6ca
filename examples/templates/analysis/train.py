"""Train and score a classifier on the template's data set: `%run /opt/analysis/train.py`."""

import os

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

data = pd.read_csv(os.path.join(os.environ.get("ANALYSIS_DATA", "/home/user/data"), "sensors.csv"))
features, labels = data[["temperature", "humidity", "vibration"]], data["label"]
x_train, x_test, y_train, y_test = train_test_split(features, labels, test_size=0.25, random_state=0)
model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
accuracy = model.score(x_test, y_test)
print(f"rows={len(data)} accuracy={accuracy:.3f}")
