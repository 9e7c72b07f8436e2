package ec2endpoint

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"time"
)

// DefaultVersion is the EC2 API version whose namespace responses use when
// a request names none (the SDK sends 2016-11-15).
const DefaultVersion = "2016-11-15"

// apiError is an EC2 error response.
type apiError struct {
	Code, Message string
	Status        int
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func apiErr(code, format string, args ...any) *apiError {
	st := http.StatusBadRequest
	switch code {
	case "AuthFailure":
		st = http.StatusUnauthorized
	case "SignatureDoesNotMatch":
		st = http.StatusForbidden
	case "InternalError":
		st = http.StatusInternalServerError
	}
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...), Status: st}
}

type xmlErrorResponse struct {
	XMLName   xml.Name `xml:"Response"`
	Errors    []xmlErr `xml:"Errors>Error"`
	RequestID string   `xml:"RequestID"`
}

type xmlErr struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// Head starts every response: the request ID. The root element and its
// namespace are marshalResponse's. (Exported only because encoding/xml
// cannot marshal an embedded struct of an unexported type.)
type Head struct {
	RequestID string `xml:"requestId"`
}

func (h *Head) setHead(id string) { h.RequestID = id }

type response interface{ setHead(string) }

const timeFormat = "2006-01-02T15:04:05.000Z"

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeFormat)
}

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xmlState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xmlReason struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type xmlPlacement struct {
	AvailabilityZone string `xml:"availabilityZone"`
}

type xmlInstanceEbs struct {
	VolumeID            string `xml:"volumeId"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xmlInstanceBDM struct {
	DeviceName string         `xml:"deviceName"`
	Ebs        xmlInstanceEbs `xml:"ebs"`
}

type xmlInstance struct {
	InstanceID         string           `xml:"instanceId"`
	ImageID            string           `xml:"imageId"`
	State              xmlState         `xml:"instanceState"`
	PrivateDNSName     string           `xml:"privateDnsName"`
	DNSName            string           `xml:"dnsName"`
	Reason             string           `xml:"reason"`
	KeyName            string           `xml:"keyName,omitempty"`
	AmiLaunchIndex     int              `xml:"amiLaunchIndex"`
	InstanceType       string           `xml:"instanceType"`
	LaunchTime         string           `xml:"launchTime"`
	Placement          xmlPlacement     `xml:"placement"`
	KernelID           string           `xml:"kernelId,omitempty"`
	RamdiskID          string           `xml:"ramdiskId,omitempty"`
	Monitoring         xmlMonitoring    `xml:"monitoring"`
	PrivateIPAddress   string           `xml:"privateIpAddress,omitempty"`
	IPAddress          string           `xml:"ipAddress,omitempty"`
	Groups             []xmlGroup       `xml:"groupSet>item"`
	StateReason        *xmlReason       `xml:"stateReason,omitempty"`
	Architecture       string           `xml:"architecture"`
	RootDeviceType     string           `xml:"rootDeviceType"`
	RootDeviceName     string           `xml:"rootDeviceName,omitempty"`
	BlockDeviceMapping []xmlInstanceBDM `xml:"blockDeviceMapping>item,omitempty"`
	VirtualizationType string           `xml:"virtualizationType"`
	Hypervisor         string           `xml:"hypervisor"`
	Tags               []xmlTag         `xml:"tagSet>item,omitempty"`
}

type xmlMonitoring struct {
	State string `xml:"state"`
}

type xmlGroup struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

// defaultGroups is every instance's security group: the account's
// "default" (groupSet is required in instances and reservations).
var defaultGroups = []xmlGroup{{GroupID: "sg-0000000d", GroupName: "default"}}

type xmlReservation struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Groups        []xmlGroup    `xml:"groupSet>item"`
	Instances     []xmlInstance `xml:"instancesSet>item"`
}

type runInstancesResponse struct {
	Head
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Groups        []xmlGroup    `xml:"groupSet>item"`
	Instances     []xmlInstance `xml:"instancesSet>item"`
}

type describeInstancesResponse struct {
	Head
	Reservations []xmlReservation `xml:"reservationSet>item"`
}

type xmlStateChange struct {
	InstanceID    string   `xml:"instanceId"`
	CurrentState  xmlState `xml:"currentState"`
	PreviousState xmlState `xml:"previousState"`
}

type stateChangeResponse struct {
	Head
	Instances []xmlStateChange `xml:"instancesSet>item"`
}

type consoleOutputResponse struct {
	Head
	InstanceID string `xml:"instanceId"`
	Timestamp  string `xml:"timestamp"`
	Output     string `xml:"output"`
}

type xmlAttachment struct {
	VolumeID            string `xml:"volumeId"`
	InstanceID          string `xml:"instanceId"`
	Device              string `xml:"device"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xmlVolume struct {
	VolumeID         string          `xml:"volumeId"`
	Size             int             `xml:"size"`
	SnapshotID       string          `xml:"snapshotId"`
	AvailabilityZone string          `xml:"availabilityZone"`
	Status           string          `xml:"status"`
	CreateTime       string          `xml:"createTime"`
	Attachments      []xmlAttachment `xml:"attachmentSet>item"`
	VolumeType       string          `xml:"volumeType"`
	Encrypted        bool            `xml:"encrypted"`
	Tags             []xmlTag        `xml:"tagSet>item,omitempty"`
}

type createVolumeResponse struct {
	Head
	VolumeID         string   `xml:"volumeId"`
	Size             int      `xml:"size"`
	SnapshotID       string   `xml:"snapshotId"`
	AvailabilityZone string   `xml:"availabilityZone"`
	Status           string   `xml:"status"`
	CreateTime       string   `xml:"createTime"`
	VolumeType       string   `xml:"volumeType"`
	Encrypted        bool     `xml:"encrypted"`
	Tags             []xmlTag `xml:"tagSet>item,omitempty"`
}

type describeVolumesResponse struct {
	Head
	Volumes []xmlVolume `xml:"volumeSet>item"`
}

type attachmentResponse struct {
	Head
	VolumeID            string `xml:"volumeId"`
	InstanceID          string `xml:"instanceId"`
	Device              string `xml:"device"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

func attachResp(a *attachment) *attachmentResponse {
	return &attachmentResponse{VolumeID: a.volumeID, InstanceID: a.instanceID, Device: a.device, Status: a.state, AttachTime: ts(a.at), DeleteOnTermination: a.deleteOnTermination}
}

type returnResponse struct {
	Head
	Return bool `xml:"return"`
}

type xmlSnapshot struct {
	SnapshotID  string   `xml:"snapshotId"`
	VolumeID    string   `xml:"volumeId"`
	Status      string   `xml:"status"`
	StartTime   string   `xml:"startTime"`
	Progress    string   `xml:"progress"`
	OwnerID     string   `xml:"ownerId"`
	VolumeSize  int      `xml:"volumeSize"`
	Description string   `xml:"description"`
	Encrypted   bool     `xml:"encrypted"`
	Tags        []xmlTag `xml:"tagSet>item,omitempty"`
}

type createSnapshotResponse struct {
	Head
	SnapshotID  string   `xml:"snapshotId"`
	VolumeID    string   `xml:"volumeId"`
	Status      string   `xml:"status"`
	StartTime   string   `xml:"startTime"`
	Progress    string   `xml:"progress"`
	OwnerID     string   `xml:"ownerId"`
	VolumeSize  int      `xml:"volumeSize"`
	Description string   `xml:"description"`
	Encrypted   bool     `xml:"encrypted"`
	Tags        []xmlTag `xml:"tagSet>item,omitempty"`
}

type describeSnapshotsResponse struct {
	Head
	Snapshots []xmlSnapshot `xml:"snapshotSet>item"`
}

type xmlEbs struct {
	SnapshotID          string `xml:"snapshotId,omitempty"`
	VolumeSize          int    `xml:"volumeSize,omitempty"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
	VolumeType          string `xml:"volumeType,omitempty"`
}

type xmlImageBDM struct {
	DeviceName  string  `xml:"deviceName"`
	VirtualName string  `xml:"virtualName,omitempty"`
	Ebs         *xmlEbs `xml:"ebs,omitempty"`
	NoDevice    *string `xml:"noDevice,omitempty"`
}

type xmlImage struct {
	ImageID            string        `xml:"imageId"`
	ImageLocation      string        `xml:"imageLocation"`
	ImageState         string        `xml:"imageState"`
	ImageOwnerID       string        `xml:"imageOwnerId"`
	CreationDate       string        `xml:"creationDate"`
	IsPublic           bool          `xml:"isPublic"`
	Architecture       string        `xml:"architecture"`
	ImageType          string        `xml:"imageType"`
	KernelID           string        `xml:"kernelId,omitempty"`
	RamdiskID          string        `xml:"ramdiskId,omitempty"`
	Name               string        `xml:"name"`
	Description        string        `xml:"description,omitempty"`
	RootDeviceType     string        `xml:"rootDeviceType"`
	RootDeviceName     string        `xml:"rootDeviceName,omitempty"`
	BlockDeviceMapping []xmlImageBDM `xml:"blockDeviceMapping>item,omitempty"`
	VirtualizationType string        `xml:"virtualizationType"`
	Hypervisor         string        `xml:"hypervisor"`
	Tags               []xmlTag      `xml:"tagSet>item,omitempty"`
}

type registerImageResponse struct {
	Head
	ImageID string `xml:"imageId"`
}

type describeImagesResponse struct {
	Head
	Images []xmlImage `xml:"imagesSet>item"`
}

type xmlTagDescription struct {
	ResourceID   string `xml:"resourceId"`
	ResourceType string `xml:"resourceType"`
	Key          string `xml:"key"`
	Value        string `xml:"value"`
}

type describeTagsResponse struct {
	Head
	Tags      []xmlTagDescription `xml:"tagSet>item"`
	NextToken string              `xml:"nextToken,omitempty"`
}

type xmlZone struct {
	ZoneName   string `xml:"zoneName"`
	ZoneState  string `xml:"zoneState"`
	RegionName string `xml:"regionName"`
}

type describeZonesResponse struct {
	Head
	Zones []xmlZone `xml:"availabilityZoneInfo>item"`
}

type xmlAttrValue struct {
	Value string `xml:"value"`
}

type describeInstanceAttributeResponse struct {
	Head
	InstanceID          string            `xml:"instanceId"`
	InstanceType        *xmlAttrValue     `xml:"instanceType,omitempty"`
	Kernel              *xmlAttrValue     `xml:"kernel,omitempty"`
	Ramdisk             *xmlAttrValue     `xml:"ramdisk,omitempty"`
	UserData            *xmlAttrValue     `xml:"userData,omitempty"`
	DisableAPITerminate *xmlAttrValue     `xml:"disableApiTermination,omitempty"`
	ShutdownBehavior    *xmlAttrValue     `xml:"instanceInitiatedShutdownBehavior,omitempty"`
	RootDeviceName      *xmlAttrValue     `xml:"rootDeviceName,omitempty"`
	BlockDeviceMapping  *[]xmlInstanceBDM `xml:"blockDeviceMapping>item,omitempty"`
}
