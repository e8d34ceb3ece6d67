"""The platform's roles, as Django groups created by a migration."""

PATIENT = "patient"
FRONT_DESK = "front_desk"
PHARMACIST = "pharmacist"
ADMINISTRATOR = "administrator"
# Clinicians of the examining or ordering department (radiology for a contrast CT) decide the screening
# cases the pipeline sends to a person; the front desk does not.
CLINICIAN = "clinician"
# Doctors of an outpatient session run its queue from the console: call the next patient into their room,
# recall, skip, complete, mark absent.
DOCTOR = "doctor"

ALL = (PATIENT, FRONT_DESK, PHARMACIST, ADMINISTRATOR, CLINICIAN, DOCTOR)
STAFF_ROLES = (FRONT_DESK, PHARMACIST, ADMINISTRATOR, CLINICIAN, DOCTOR)
SCREENING_REVIEWER = CLINICIAN
