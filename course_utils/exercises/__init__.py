"""The checks of each notebook's exercises: ``from course_utils.exercises import ex07``.

One module per notebook. Each check computes its reference at check time from the notebook's
own model and data (nothing in a student notebook shows an answer), runs a learner's function
on copies (a wrong answer cannot change the notebook's state), and gives feedback that
diagnoses the mistakes learners are known to make. They return ``cu.checks.Feedback``; a
solutions notebook asserts them.
"""
