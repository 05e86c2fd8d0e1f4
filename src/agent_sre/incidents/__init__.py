"""Incidents: many alerts, one cause. The view of firing alerts, the evidence each alert carries,
the correlator that finds roots and symptoms, and the desk that turns that into one action (or one
escalation) per incident. See ``desk`` for the contract with the agent."""
