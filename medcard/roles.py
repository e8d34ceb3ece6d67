"""The platform's roles, as Django groups created by a migration."""

PATIENT = "patient"
FRONT_DESK = "front_desk"
PHARMACIST = "pharmacist"
ADMINISTRATOR = "administrator"

ALL = (PATIENT, FRONT_DESK, PHARMACIST, ADMINISTRATOR)
STAFF_ROLES = (FRONT_DESK, PHARMACIST, ADMINISTRATOR)
