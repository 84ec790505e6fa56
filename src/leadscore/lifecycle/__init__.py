"""The quarterly model lifecycle: backtest, challenger and champion, the promotion gate."""
