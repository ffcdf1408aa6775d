"""The A/B backtest and report of the example market makers (a tool, like the demo).

- `ab`: legacy vs feature strategy on hftbacktest, decisions compared;
- `report`: the PNG report of a run;
- `cli`: `featureplane backtest ab|run`.
"""
