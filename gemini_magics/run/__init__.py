"""How a cell runs: ``cell`` (one turn with its tool rounds, or a background start), ``rows`` (``--over``),
``batch`` (``--batch``), ``follow`` (a background run followed to its end), ``uploads`` (files made ready
to send). Each talks to the client and commits through the session; none shows anything itself."""
