#include "lte-cell-traces.h"

#include "ns3/animation-interface.h"
#include "ns3/channel.h"
#include "ns3/ipv4-l3-protocol.h"
#include "ns3/ipv4.h"
#include "ns3/log.h"
#include "ns3/mobility-model.h"
#include "ns3/node-list.h"
#include "ns3/pcap-file-wrapper.h"
#include "ns3/point-to-point-net-device.h"
#include "ns3/simulator.h"
#include "ns3/trace-helper.h"

#include <ios>

namespace ns3
{

NS_LOG_COMPONENT_DEFINE("LteCellTraces");

namespace
{

void
WriteFrame(Ptr<PcapFileWrapper> file, Ptr<const Packet> p)
{
    file->Write(Simulator::Now(), p);
}

/// Ipv4L3Protocol's Tx and Rx carry the packet with its IP header and the interface.
void
WriteIpPacket(Ptr<PcapFileWrapper> file,
              uint32_t interface,
              Ptr<const Packet> p,
              Ptr<Ipv4> /* ipv4 */,
              uint32_t at)
{
    if (at == interface)
    {
        file->Write(Simulator::Now(), p);
    }
}

/// The node at the other end of a point-to-point device.
Ptr<Node>
PeerOf(Ptr<PointToPointNetDevice> device)
{
    Ptr<Channel> channel = device->GetChannel();
    for (std::size_t i = 0; channel && i < channel->GetNDevices(); ++i)
    {
        if (channel->GetDevice(i) != device)
        {
            return channel->GetDevice(i)->GetNode();
        }
    }
    return nullptr;
}

} // namespace

LteCellTraces::LteCellTraces(const Cell& cell, const std::string& dir, bool pcap, bool netanim)
    : m_dir(dir)
{
    m_names[cell.bs->GetId()] = "enb";
    for (uint32_t i = 0; i < cell.devices.GetN(); ++i)
    {
        m_names[cell.devices.Get(i)->GetId()] = "ue" + std::to_string(i);
    }
    m_names[cell.pgw->GetId()] = "pgw";
    m_names[cell.sgw->GetId()] = "sgw";
    m_names[cell.edge->GetId()] = "edge";
    if (pcap)
    {
        EnablePcap(cell);
    }
    if (netanim)
    {
        EnableNetAnim(cell);
    }
}

LteCellTraces::~LteCellTraces()
{
    Close();
}

std::string
LteCellTraces::NameOf(Ptr<Node> node) const
{
    const auto it = m_names.find(node->GetId());
    return it != m_names.end() ? it->second : "node" + std::to_string(node->GetId());
}

void
LteCellTraces::EnablePcap(const Cell& cell)
{
    PcapHelper helper;
    for (auto n = NodeList::Begin(); n != NodeList::End(); ++n)
    {
        for (uint32_t d = 0; d < (*n)->GetNDevices(); ++d)
        {
            Ptr<PointToPointNetDevice> device =
                DynamicCast<PointToPointNetDevice>((*n)->GetDevice(d));
            Ptr<Node> peer = device ? PeerOf(device) : nullptr;
            if (!peer)
            {
                continue;
            }
            const std::string name = NameOf(*n) + "-" + NameOf(peer) + ".pcap";
            Ptr<PcapFileWrapper> file = helper.CreateFile(m_dir + "/" + name,
                                                          std::ios::out,
                                                          PcapHelper::DLT_PPP,
                                                          kSnapBytes);
            device->TraceConnectWithoutContext("PromiscSniffer",
                                               MakeBoundCallback(&WriteFrame, file));
            m_pcaps.push_back(file);
            m_files.push_back(name);
        }
    }
    for (uint32_t i = 0; i < cell.devices.GetN(); ++i)
    {
        Ptr<Ipv4L3Protocol> ipv4 = cell.devices.Get(i)->GetObject<Ipv4L3Protocol>();
        const int32_t interface = ipv4->GetInterfaceForDevice(cell.ueDevices.Get(i));
        NS_ABORT_MSG_IF(interface < 0, "LteCellTraces: UE " << i << " has no LTE interface");
        const std::string name = "ue" + std::to_string(i) + ".pcap";
        Ptr<PcapFileWrapper> file =
            helper.CreateFile(m_dir + "/" + name, std::ios::out, PcapHelper::DLT_RAW, kSnapBytes);
        for (const char* way : {"Tx", "Rx"})
        {
            ipv4->TraceConnectWithoutContext(
                way,
                MakeBoundCallback(&WriteIpPacket, file, uint32_t(interface)));
        }
        m_pcaps.push_back(file);
        m_files.push_back(name);
    }
}

void
LteCellTraces::EnableNetAnim(const Cell& cell)
{
    // Nodes without a mobility model (the EPC's, the edge host) in a row beside the cell, so
    // that AnimationInterface draws no random position for them.
    double x = -100;
    for (auto n = NodeList::Begin(); n != NodeList::End(); ++n)
    {
        if (!(*n)->GetObject<MobilityModel>())
        {
            AnimationInterface::SetConstantPosition(*n, x, -100);
            x -= 100;
        }
    }
    const std::string name = "netanim.xml";
    m_anim = std::make_unique<AnimationInterface>(m_dir + "/" + name);
    m_anim->SkipPacketTracing();
    for (auto n = NodeList::Begin(); n != NodeList::End(); ++n)
    {
        const std::string role = NameOf(*n);
        m_anim->UpdateNodeDescription(*n, role);
        if (role == "enb")
        {
            m_anim->UpdateNodeColor(*n, 255, 0, 0);
        }
        else if (role.rfind("ue", 0) == 0)
        {
            m_anim->UpdateNodeColor(*n, 0, 0, 255);
        }
        else
        {
            m_anim->UpdateNodeColor(*n, 128, 128, 128);
        }
    }
    m_files.push_back(name);
    NS_LOG_INFO("NetAnim of " << cell.devices.GetN() << " UEs in " << m_dir << "/" << name);
}

void
LteCellTraces::Close()
{
    for (Ptr<PcapFileWrapper> file : m_pcaps)
    {
        file->Close();
    }
    m_pcaps.clear();
    m_anim.reset(); // writes </anim>
}

} // namespace ns3
